"""Screenshots of the demo's reports and of the live dashboard, in headless Chromium.

    make demo && python -m crmhub.demo.screenshots [--demo-dir var/demo] [--out var/demo/screenshots]

The report files come from ``make demo`` (var/demo/reports); the dashboard page is served by
the real `crmhub serve` app on a free local port and opened with HTTP basic auth. Needs the
Debian package ``chromium`` (or CHROMIUM=/path/to/chrome).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx

PERIOD = "2026-10-01..2026-10-31"


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("screenshots: chromium not found (apt-get install chromium, or set CHROMIUM)")
    return found


def shoot(browser: str, url: str, png: Path, height: int) -> None:
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--disable-dev-shm-usage", f"--window-size=820,{height}", f"--screenshot={png}", url],
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not png.exists():
        sys.exit(f"screenshots: chromium failed on {url}: {done.stderr.strip()[-500:]}")
    print(f"  {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", type=Path, default=Path("var/demo"))
    ap.add_argument("--out", type=Path, default=None, help="Folder for the PNGs (default: DEMO_DIR/screenshots).")
    ap.add_argument("--height", type=int, default=2600)
    args = ap.parse_args()
    demo = args.demo_dir.resolve()
    out = (args.out or demo / "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    reports = sorted((demo / "reports").glob("*.html"))
    if not reports:
        sys.exit(f"screenshots: no reports in {demo / 'reports'}: run `make demo` first")
    print("report files:")
    for page in reports:
        shoot(browser, page.as_uri(), out / f"report-{page.stem}.png", args.height)

    import uvicorn

    from crmhub import config as config_mod
    from crmhub.server import Service, create_app

    os.environ.setdefault("CRMHUB_DEMO_SAMPLES", str(Path(__file__).parent / "samples"))
    os.environ.setdefault("CRMHUB_DEMO_URL", "http://127.0.0.1:9")  # not contacted: no sync runs here
    cfg = config_mod.load(demo / "crmhub.yml")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Service.load(cfg)), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # readiness, not a clock
            if not thread.is_alive():
                sys.exit("screenshots: the dashboard server did not start")
            thread.join(0.05)
        d = cfg.settings.dashboard
        user, password = d.username, d.password.get_secret_value()
        url = f"http://127.0.0.1:{port}/reports/sales?period={PERIOD}"
        check = httpx.get(url, auth=(user, password), timeout=120)
        check.raise_for_status()
        print("dashboard:")
        shoot(browser, f"http://{user}:{password}@127.0.0.1:{port}/reports/sales?period={PERIOD}",
              out / "dashboard-sales.png", args.height)
    finally:
        server.should_exit = True
        thread.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
