"""The admin GUI in a real browser (Playwright driving Debian's chromium), run by tests/gui_browser.rs.

Usage: e2e.py GUI_URL SIP_HOST SIP_PORT SCREENSHOT_DIR
First login as admin/admin lands on the forced change; a weak password is refused with its reasons;
after the change an extension is added and listed; a sipvicious scan from 127.0.0.66 appears on the
dashboard without reloading; the ban is lifted from the bans page and the same probe is answered again.
Then a screenshot of every page in the navigation. Exit status 0 only if every step passed.
"""
import os
import socket
import subprocess
import sys
import time

from playwright.sync_api import expect, sync_playwright

base, sip_host, sip_port, shots = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3]), sys.argv[4]
here = os.path.dirname(os.path.abspath(__file__))
ATTACKER = "127.0.0.66"
NEW_PASSWORD = "Gu1-Operat0r#Strong26"


def step(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def options_answered(src, tag):
    """An OPTIONS from `src`: True if anything came back within 400 ms."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.settimeout(0.4)
        port = s.getsockname()[1]
        msg = (
            f"OPTIONS sip:{sip_host}:{sip_port} SIP/2.0\r\nVia: SIP/2.0/UDP {src}:{port};rport;branch=z9hG4bK{tag}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@{src}>;tag={tag}\r\nTo: <sip:{sip_host}>\r\nCall-ID: {tag}@{src}\r\n"
            f"CSeq: 1 OPTIONS\r\nUser-Agent: pbxguard-test\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (sip_host, sip_port))
        try:
            s.recvfrom(4096)
            return True
        except socket.timeout:
            return False
    finally:
        s.close()


def wait_until(what, f, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if f():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--disable-gpu", "--disable-quic"])
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1000, "height": 700})
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    page.set_default_timeout(10_000)

    step("first login as admin/admin lands on the forced change")
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/")
    page.fill("#user", "admin")
    page.fill("#password", "admin")
    page.click("#login")
    expect(page).to_have_url(base + "/password")
    page.goto(base + "/events")
    expect(page).to_have_url(base + "/password")

    step("a weak password is refused with its reasons")
    page.fill("#new", "admin1")
    page.fill("#confirm", "admin1")
    page.click("#change")
    reasons = page.locator("#reasons li")
    expect(reasons.first).to_be_visible()
    print("  reasons:", reasons.all_inner_texts())
    assert reasons.count() >= 2, reasons.all_inner_texts()

    step("a strong one is accepted")
    page.fill("#new", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    page.click("#change")
    expect(page).to_have_url(base + "/")
    expect(page.locator("h1")).to_have_text("Dashboard")

    step("add an extension and see it listed")
    page.goto(base + "/extensions")
    page.fill("#number", "1001")
    page.fill("#name", "Reception")
    page.fill("#secret", "Ext-Secret#2026x")
    page.click("#ext-add-submit")
    expect(page.locator("#ext-list")).to_contain_text("1001")

    step("a sipvicious scan from 127.0.0.66 appears on the dashboard without reloading")
    assert options_answered(ATTACKER, "before"), "the attacker's address is answered before the scan"
    page.goto(base + "/")
    expect(page.locator("#live-state")).to_have_text(" (live)")
    started = time.time()
    scan = subprocess.Popen(
        ["timeout", "60", "/usr/bin/python3", os.path.join(here, "..", "sv", "bindwrap.py"), ATTACKER, "svmap",
         sip_host, "-p", str(sip_port), "-P", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HOME": shots + "-svhome"},
    )
    # The first packet leaves once the tool has started; the row must follow within 1 s of it. The
    # tool's own start (a Python program) is measured too, so the bound here is 1 s plus that start.
    row = page.locator(f"#live-feed tbody tr.fresh:has(td:text-is('{ATTACKER}'))").first
    expect(row).to_be_visible(timeout=15_000)
    seen = time.time() - started
    out = scan.communicate(timeout=60)[0].decode(errors="replace")
    print(f"  live row after {seen:.2f} s from launching svmap; kinds:",
          page.locator("#live-feed tbody tr.fresh").evaluate_all("rs => rs.map(r => r.dataset.kind)"))
    assert page.url == base + "/", "the page was not reloaded"
    assert seen < 2, f"the scan took {seen:.2f} s to appear (1 s allowed, plus the tool's start)"
    wait_until("the attacker to be silenced", lambda: not options_answered(ATTACKER, "during"))

    step("unban it from the bans page; the same probe is answered again")
    page.goto(base + "/bans")
    ban = page.locator(f"#ban-list tr[data-target='{ATTACKER}']")
    expect(ban).to_contain_text("scanner")
    ban.locator("button.unban").click()
    expect(page.locator(f"#ban-list tr[data-target='{ATTACKER}']")).to_have_count(0)
    n = [0]

    def answered():
        n[0] += 1
        return options_answered(ATTACKER, f"after{n[0]}")

    wait_until("the attacker's probe to be answered after the unban", answered)

    step("import a pasted blacklist in the background, with its progress")
    page.goto(base + "/blacklists")
    page.fill("#name", "e2e")
    page.fill("#text", "203.0.113.0/24\n198.51.100.7\nnot an address\n")
    page.click("#import-submit")
    expect(page.locator("#import-jobs li[data-state='finished']")).to_have_count(1)
    expect(page.locator("#import-jobs li .message")).to_contain_text("2 entries, 1 lines skipped")
    page.reload()
    expect(page.locator("#blacklist-list")).to_contain_text("e2e")

    step("screenshots of every page")
    os.makedirs(shots, exist_ok=True)
    links = page.locator("header nav a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    taken = []
    for href in links:
        # Asked first without the browser: chromium turns an empty 404 into an error page that
        # disturbs the next navigation. Every entry has its page, so a 404 is a dead link: it fails.
        status = ctx.request.get(base + href, max_redirects=0).status
        assert status == 200, f"{href}: {status}"
        page.goto(base + href)
        name = "dashboard" if href == "/" else href.strip("/").replace("/", "-")
        path = os.path.join(shots, name + ".png")
        page.screenshot(path=path)
        taken.append((name, os.path.getsize(path)))
    print("  screenshots:", ", ".join(f"{n} ({s // 1024} KiB)" for n, s in taken))
    assert len(taken) == len(links), taken
    browser.close()

print("all browser steps passed")
