"""The web app (App.py) in a real headless Chromium, driven by Selenium: two users at once, each taking the sample
through GEN_TYPE 1 until a video plays in their page, and a bad upload that gets the programs' one-line message
(skipped, with the reason, where Chromium and its driver are not installed: `.ci/run` installs them); then the
training path without a browser."""
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import VideoIO
from conftest import SRC

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(sample_videos, tmp_path_factory):
    """App.py running as a user starts it, on a free port, with its own data folder: (URL, data folder)."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("app-data")
    log = open(data_dir / "app.log", "w")
    process = subprocess.Popen([sys.executable, str(SRC / "App.py"), "--port", str(port), "--data-dir", str(data_dir)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=SRC.parent)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail(f"App.py did not start: {(data_dir / 'app.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, data_dir
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def app_url(app_server):
    return app_server[0]


def open_browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no Chromium and chromedriver here (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2400",
                     "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)


@pytest.fixture
def browser():
    driver = open_browser()
    yield driver
    driver.quit()


@pytest.fixture
def second_browser():
    """Another browser, so another Gradio session: a second user."""
    driver = open_browser()
    yield driver
    driver.quit()


def tick(driver, elem_id):
    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=checkbox]").click()


def page_text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def start_the_sample_through_nearest_neighbour(driver, app_url):
    driver.get(app_url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "run"))
    tick(driver, "sample_target")
    tick(driver, "sample_source")
    driver.find_element(By.ID, "run").click()  # GEN_TYPE 1 is the default


def playing_video(driver):
    """Wait for the run to finish, then for the browser itself to decode the result: metadata loaded, a duration
    and a frame to show. Returns [readyState, duration, width, height]."""
    WebDriverWait(driver, 300).until(lambda d: "done:" in d.find_element(By.CSS_SELECTOR, "#status textarea")
                                     .get_attribute("value"))
    video = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "#result video"))
    state = WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "const v = arguments[0]; return v.readyState >= 2 && v.duration > 0 ? "
        "[v.readyState, v.duration, v.videoWidth, v.videoHeight] : null;", video))
    return state


def test_two_users_at_once_each_get_the_sample_through_nearest_neighbour_playing(app_server, browser, second_browser):
    url, data_dir = app_server
    start_the_sample_through_nearest_neighbour(browser, url)
    start_the_sample_through_nearest_neighbour(second_browser, url)
    for state in (playing_video(browser), playing_video(second_browser)):
        assert state[1] > 1.0 and state[2] == 1024 and state[3] == 512, state  # 100 frames at 60 fps, 2 x 512 px
    # Each browser session wrote its video into a folder of its own.
    videos = data_dir.glob("app/*/out/dance_gen1_*.mp4")
    sessions = {video.relative_to(data_dir / "app").parts[0] for video in videos}
    assert len(sessions) == 2, sessions


def test_a_file_that_is_not_a_video_gets_one_clear_message_and_the_app_goes_on(app_url, browser, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    browser.get(app_url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "run"))
    browser.find_element(By.CSS_SELECTOR, "#target_upload input[type=file]").send_keys(str(bad))
    WebDriverWait(browser, 30).until(lambda d: "notes" in page_text(d))  # uploaded
    tick(browser, "sample_source")
    browser.find_element(By.ID, "run").click()

    def error_shown(driver):
        value = driver.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")
        return value.startswith("error:") and value

    status = WebDriverWait(browser, 120).until(error_shown)
    assert "not a video OpenCV can decode" in status and "\n" not in status
    urllib.request.urlopen(app_url, timeout=5)  # still serving



def test_the_app_trains_a_model_shows_its_grid_and_losses_then_makes_the_video(sample_videos, tmp_path):
    """The same function the page's button calls, without a browser: GEN_TYPE 4 on the sample, a few seconds of
    training through the trainer's own command line, then the video."""
    import App

    class Request:
        session_hash = "test-session"

    updates = list(App.make_video(None, True, None, True, 4, 0.05, False, "side-by-side", str(tmp_path), Request()))
    statuses = [update[0] for update in updates]
    assert any(s.startswith("training gan") for s in statuses) and statuses[-1].startswith("done:"), statuses
    status, video, download, grid, losses = updates[-1]
    assert video == download and video.endswith(".mp4") and (tmp_path / "app" / "test-session" / "out").exists()
    assert grid.endswith(".png") and "gan_128_samples" in grid and losses.endswith("gan_128_loss.png")
    info = VideoIO.video_info(video)  # the layout asked for
    assert (info["width"], info["height"]) == (1024, 512)
