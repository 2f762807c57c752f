"""`gmail` messages: the shared mail mapping (crm_model.mapping.mail)."""

from crm_model.mapping.mail import register

register("gmail")
