"""Meta (Facebook/Instagram): ads and their daily insights (meta_ads), lead ads (meta_leads)."""
