"""Drives the dashboard in headless Chromium (Selenium with Debian's chromium-driver) against a
running `ticketlog serve`, as people would use it (issue 18). `make test` runs it from
DashboardBrowserTests with a fresh server; it exits 0 when every check holds and prints each
check, or the first failure, as one line.

Usage: drive_dashboard.py BASE_URL TOKENS_JSON [--screenshots DIR]
TOKENS_JSON maps admin, agent (sam, assigned to ticket 1001), creator (kim, 1001's creator),
owner (jo, 2002's creator) and stranger (lee, an agent of nothing) to tokens.
"""
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, TOKENS = sys.argv[1].rstrip("/"), json.loads(sys.argv[2])
SHOTS = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else None
WAIT = 20


def check(ok, what):
    if not ok:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def api(method, path, token, body=None):
    request = urllib.request.Request(
        BASE + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def browser(width=1280, height=900):
    options = webdriver.ChromeOptions()
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def sign_in(driver, token):
    driver.get(BASE + "/")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ticket-list li"))


def listed(driver):
    return sorted(b.get_attribute("data-channel") for b in driver.find_elements(By.CSS_SELECTOR, "#ticket-list button"))


def open_ticket(driver, channel):
    driver.find_element(By.CSS_SELECTOR, f'#ticket-list button[data-channel="{channel}"]').click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "connection").text == "Live")


def texts(driver, selector):
    # Read in one script: lists are re-rendered as events arrive, and elements found one call
    # earlier can be gone by the next.
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", selector)


def messages(driver):
    # Read in one script: the list is re-rendered as events arrive, and elements found one call
    # earlier can be gone by the next.
    return driver.execute_script(
        "return [...document.querySelectorAll('#messages .message .text')].map((e) => e.textContent)")


def post(driver, text):
    box = driver.find_element(By.ID, "post-text")
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#post-form button[type=submit]").click()


def errors(driver):
    """The page's console errors so far (the log is read once: reading empties it). Requests
    refused while the network is emulated offline are expected."""
    return [
        e["message"] for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "ERR_INTERNET_DISCONNECTED" not in e["message"]
    ]


# A second ticket, someone else's.
api("POST", "/api/chat/tickets", TOKENS["admin"],
    {"ticketId": "2002", "title": "Unboxing for globex", "brand": "globex", "creator": "jo"})

# Each role sees exactly the tickets the API allows it.
expected = {
    "admin": ["ticket-1001", "ticket-2002"], "agent": ["ticket-1001"], "creator": ["ticket-1001"],
    "owner": ["ticket-2002"], "stranger": [],
}

for role, channels in expected.items():
    driver = browser()
    try:
        sign_in(driver, TOKENS[role])
        check(listed(driver) == channels, f"{role} sees {channels or 'no ticket'} (saw {listed(driver)})")
        if not channels:
            check("You have no tickets." in driver.find_element(By.ID, "ticket-list").text, "an empty list says so")
        if role == "admin":
            # The filters narrow the list: by brand, by agent.
            Select(driver.find_element(By.ID, "brand-filter")).select_by_visible_text("globex")
            check(listed(driver) == ["ticket-2002"], f"the brand filter keeps globex's ticket (saw {listed(driver)})")
            Select(driver.find_element(By.ID, "brand-filter")).select_by_index(0)
            Select(driver.find_element(By.ID, "agent-filter")).select_by_visible_text("sam")
            check(listed(driver) == ["ticket-1001"], f"the agent filter keeps sam's ticket (saw {listed(driver)})")
        problems = errors(driver)
        check(not problems, f"no console errors for {role}: {problems}")
    finally:
        driver.quit()

kim, sam = browser(), browser()
# sam on a phone: 360 CSS pixels wide (a headless window cannot be made that narrow).
sam.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                    {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
try:
    sign_in(kim, TOKENS["creator"])
    sign_in(sam, TOKENS["agent"])
    check(sam.execute_script("return document.documentElement.clientWidth") <= 360, "sam's page is 360 px wide")
    check(sam.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth"),
          "nothing is wider than a 360 px screen")
    # The keyboard alone opens a ticket: Tab to it, Enter.
    kim.find_element(By.ID, "search").click()
    for _ in range(12):
        active = kim.switch_to.active_element
        if active.get_attribute("data-channel") == "ticket-1001":
            break
        active.send_keys(Keys.TAB)
    check(kim.switch_to.active_element.get_attribute("data-channel") == "ticket-1001",
          "the ticket list is reached with Tab")
    kim.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "connection").text == "Live")
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "ticket-title").text)
    check(True, "and Enter opens it")
    # The demo's deliverable, as a link.
    WebDriverWait(kim, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#deliverables a"))
    link = kim.find_element(By.CSS_SELECTOR, "#deliverables a").get_attribute("href")
    check(link.startswith("https://"), f"the ticket's deliverables are listed with their links ({link})")
    open_ticket(sam, "ticket-1001")
    if SHOTS:
        kim.save_screenshot(f"{SHOTS}/ticket.png")
        sam.save_screenshot(f"{SHOTS}/ticket-phone.png")

    # A post from one browser arrives live in the other.
    live = f"Live from sam {uuid.uuid4().hex[:8]}"
    post(sam, live)
    WebDriverWait(kim, WAIT).until(lambda d: live in messages(d))
    check(messages(kim).count(live) == 1, "a post from sam's browser arrives live in kim's, once")

    # Offline: the post waits in the page, then goes once when the connection is back.
    kim.execute_cdp_cmd("Network.enable", {})
    kim.execute_cdp_cmd("Network.emulateNetworkConditions",
                        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "connection").text != "Live")
    queued = f"Queued by kim {uuid.uuid4().hex[:8]}"
    post(kim, queued)
    WebDriverWait(kim, WAIT).until(lambda d: "waiting to be sent" in d.find_element(By.ID, "queued").text)
    check(any(queued == m for m in messages(kim)), "the queued post shows in the conversation as not sent yet")
    check(queued not in messages(sam), "nothing reached the server while offline")
    kim.execute_cdp_cmd("Network.emulateNetworkConditions",
                        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "connection").text == "Live")
    WebDriverWait(sam, WAIT).until(lambda d: queued in messages(d))
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "queued").text == "")
    stored = api("GET", "/api/chat/tickets/1001/messages?limit=500", TOKENS["admin"])["messages"]
    check([m.get("text") for m in stored].count(queued) == 1, "after reconnecting the queued post is in the log once")
    check(messages(sam).count(queued) == 1, "and in sam's browser once")

    # Search, and open a hit.
    word = queued.split()[-1]
    box = kim.find_element(By.ID, "search")
    box.send_keys(word + Keys.ENTER)
    WebDriverWait(kim, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hits li"))
    marks = [m.text for m in kim.find_elements(By.CSS_SELECTOR, "#hits mark")]
    check(marks == [word], f"search finds the message with the word marked (marks {marks})")
    kim.find_element(By.CSS_SELECTOR, "#hits li button").click()
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "ticket").is_displayed())
    check(queued in messages(kim), "opening a hit shows its ticket")
    # Actions through the page: sam changes the status; the conversation shows it as a system
    # line, in kim's browser too.
    open_ticket(sam, "ticket-1001")
    Select(sam.find_element(By.ID, "status-select")).select_by_visible_text("in_review")
    sam.find_element(By.CSS_SELECTOR, "#status-form button[type=submit]").click()
    WebDriverWait(sam, WAIT).until(lambda d: d.find_element(By.ID, "action-error").text or any(
        "in_review" in line for line in texts(d, "#messages .system")))
    check(not sam.find_element(By.ID, "action-error").text,
          f"sam changes the status ({sam.find_element(By.ID, 'action-error').text})")
    try:
        WebDriverWait(kim, WAIT).until(
            lambda d: any("in_review" in line for line in texts(d, "#messages .system")))
    except Exception:
        state = kim.execute_script(
            "return [document.getElementById('connection').textContent, document.getElementById('ticket').hidden,"
            " [...document.querySelectorAll('#messages .system')].map((e) => e.textContent).join(' | ')]")
        check(False, f"kim's page shows sam's status change (kim's page: {state})")
    check(True, "a status change made in sam's browser shows as a system line in kim's")
    WebDriverWait(kim, WAIT).until(lambda d: "in_review" in d.find_element(By.ID, "ticket-list").text)
    check(True, "and kim's ticket list shows the new status without a reload")
    # A refused action says why, in words: kim may not edit sam's message, and may not assign.
    check(not kim.find_elements(By.ID, "assign-form") or not kim.find_element(By.ID, "assign-form").is_displayed(),
          "a creator is not offered assignment")

    # History: the slider shows the ticket as it stood after each event.
    kim.find_element(By.ID, "tab-history").click()
    slider = kim.find_element(By.ID, "history-slider")
    WebDriverWait(kim, WAIT).until(lambda d: "in_review" in d.find_element(By.ID, "history-state").text)
    first_message = kim.execute_script("return document.querySelector('#audit li:nth-child(2) button').textContent")
    kim.execute_script("arguments[0].value = 1; arguments[0].dispatchEvent(new Event('input'))", slider)
    WebDriverWait(kim, WAIT).until(lambda d: d.find_element(By.ID, "history-at").text == "#2")
    WebDriverWait(kim, WAIT).until(lambda d: "Status open" in d.find_element(By.ID, "history-state").text)
    check(live not in kim.find_element(By.ID, "history-state").text,
          f"after event 2 ({first_message}) the ticket is open and has no later message")
    slider.send_keys(Keys.END)
    WebDriverWait(kim, WAIT).until(lambda d: "in_review" in d.find_element(By.ID, "history-state").text)
    check(live in kim.find_element(By.ID, "history-state").text, "at the end the slider shows the ticket as it is")
    if SHOTS:
        kim.save_screenshot(f"{SHOTS}/history.png")
    kim.find_element(By.ID, "tab-conversation").click()

    # Who could see a message when it was posted.
    kim.execute_script("document.querySelector('#messages .message .tools button').click()")
    WebDriverWait(kim, WAIT).until(
        lambda d: any("In the channel when it was posted" in t for t in texts(d, "#messages .message .audience")))
    check(True, "a message says who was in the channel when it was posted")

    # Analytics: charts drawn from the ticket facts.
    kim.find_element(By.CSS_SELECTOR, '#views button[data-view="analytics"]').click()
    WebDriverWait(kim, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts svg")) == 4)
    check("1 ticket(s)" in kim.find_element(By.ID, "analytics-summary").text, "analytics count kim's ticket")
    check(not kim.find_element(By.CSS_SELECTOR, '#views button[data-view="integrity"]').is_displayed(),
          "integrity is offered to admins only")

    if SHOTS:
        box = kim.find_element(By.ID, "search")
        box.clear()
        box.send_keys("friday" + Keys.ENTER)
        WebDriverWait(kim, WAIT).until(lambda d: "friday" in d.find_element(By.ID, "search-summary").text)
        kim.save_screenshot(f"{SHOTS}/search.png")
    problems = errors(kim) + errors(sam)
    check(not problems, f"no console errors: {problems}")
finally:
    kim.quit()
    sam.quit()
# An admin: integrity verified, analytics over every ticket.
admin = browser()
try:
    sign_in(admin, TOKENS["admin"])
    admin.find_element(By.CSS_SELECTOR, '#views button[data-view="integrity"]').click()
    WebDriverWait(admin, WAIT).until(lambda d: "Verified" in d.find_element(By.ID, "integrity-report").text)
    check("head position" in admin.find_element(By.ID, "integrity-report").text, "an admin sees the chain verified")
    admin.find_element(By.CSS_SELECTOR, '#views button[data-view="analytics"]').click()
    WebDriverWait(admin, WAIT).until(lambda d: "2 ticket(s)" in d.find_element(By.ID, "analytics-summary").text)
    check(True, "an admin's analytics cover every ticket")
    if SHOTS:
        admin.save_screenshot(f"{SHOTS}/analytics.png")
    # The evidence bundle of a ticket, downloaded from the ticket view (when a checkpoint was
    # signed: the browser test signs one before starting the server).
    if "--no-evidence" not in sys.argv:
        downloads = tempfile.mkdtemp()
        admin.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        admin.find_element(By.CSS_SELECTOR, '#views button[data-view="tickets"]').click()
        open_ticket(admin, "ticket-1001")
        admin.find_element(By.ID, "evidence").click()
        bundle = os.path.join(downloads, "ticket-1001-evidence.tar")
        WebDriverWait(admin, WAIT).until(lambda d: os.path.exists(bundle) and os.path.getsize(bundle) > 0)
        with tarfile.open(bundle) as archive:
            names = [os.path.basename(name) for name in archive.getnames()]
        check({"entries.ndjson", "checkpoint", "verifier.key"} <= set(names),
              f"an admin downloads the ticket's evidence bundle ({sorted(names)[:6]})")
    problems = errors(admin)
    check(not problems, f"no console errors for the admin: {problems}")
finally:
    admin.quit()
print("all dashboard checks passed")
