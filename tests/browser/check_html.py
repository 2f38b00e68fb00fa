"""Checks a dbaudit HTML report the way a reader's browser sees it.

1. html5lib (a conforming HTML5 parser, in strict mode) parses it without
   a single parse error;
2. nothing in it refers outside the file (scripts, styles, fonts, images,
   frames, links other than in-page anchors);
3. Debian's headless Chromium, driven by Selenium through Debian's
   chromedriver, renders it: the verdict, the plots and the topology are
   displayed with a size; violating edges are drawn; a screenshot is
   written; and in a narrow (420 px) window the page does not scroll
   sideways (wide tables and diagrams scroll in their own boxes).

Prints one JSON object with what it found; exits 1 on a failed check.
Usage: check_html.py REPORT.html SCREENSHOT.png
"""
import json
import pathlib
import re
import sys

import html5lib

path = pathlib.Path(sys.argv[1]).resolve()
shot = pathlib.Path(sys.argv[2]).resolve()
text = path.read_text(encoding="utf-8")
result = {"bytes": len(text.encode("utf-8"))}
problems = []

parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
try:
    doc = parser.parse(text)
except Exception as e:  # strict mode raises on the first parse error
    problems.append(f"html5lib: {e}")
    doc = html5lib.parse(text, namespaceHTMLElements=False)

external = []
for el in doc.iter():
    tag = el.tag if isinstance(el.tag, str) else ""
    tag = tag.split("}")[-1]
    if tag in ("script", "link", "img", "iframe", "object", "embed", "audio", "video", "source"):
        external.append(f"<{tag}>")
    for attr in ("src", "href", "xlink:href", "{http://www.w3.org/1999/xlink}href", "srcset", "data", "poster", "action"):
        v = el.get(attr)
        if v is not None and not v.startswith("#"):
            external.append(f"{tag} {attr}={v}")
for m in re.finditer(r"url\(|@import", text):
    external.append(text[m.start() : m.start() + 40])
result["external"] = external
if external:
    problems.append(f"external references: {external[:5]}")

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    driver.set_page_load_timeout(120)
    driver.get(path.as_uri())

    def shown(css):
        els = driver.find_elements(By.CSS_SELECTOR, css)
        return [e for e in els if e.is_displayed() and e.size["width"] > 0 and e.size["height"] > 0]

    verdict = shown("#verdict")
    result["verdict"] = verdict[0].text.splitlines()[0] if verdict else None
    if not verdict:
        problems.append("the verdict is not displayed")
    result["plots"] = len(shown("figure.plot svg.chart"))
    if result["plots"] == 0:
        problems.append("no plot is displayed")
    result["plot_titles"] = [e.text for e in shown("figure.plot figcaption")]
    result["topology"] = len(shown("#topology svg.topology"))
    result["bad_edges"] = len(driver.find_elements(By.CSS_SELECTOR, "#topology path.edge.bad"))
    result["title"] = driver.title
    driver.save_screenshot(str(shot))
    result["screenshot"] = shot.stat().st_size if shot.exists() else 0
    if not result["screenshot"]:
        problems.append("no screenshot")
    # A narrow window: the page itself must not scroll sideways.
    driver.set_window_size(420, 900)
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    result["narrow_overflow_px"] = overflow
    if overflow > 2:
        problems.append(f"in a 420 px window the page scrolls sideways by {overflow} px")
    result["narrow_verdict"] = bool(shown("#verdict"))
finally:
    driver.quit()

result["problems"] = problems
print(json.dumps(result))
sys.exit(1 if problems else 0)
