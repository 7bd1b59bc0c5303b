"""The browser page in a real chromium: choose, drop or paste a photo, read the bars, and the no-JS fallback."""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TINY_CLASS_COUNT = 4  # top_k=5, but the tiny model only knows cat, owl, fern and teapot


def rows(page: Page):
    return page.locator("#predictions li.prediction")


def shown_percentages(page: Page) -> list[float]:
    # "<1%" is a real probability below half a percent; count it as a quarter.
    return [0.25 if text == "<1%" else float(text.rstrip("%")) for text in rows(page).locator(".probability").all_inner_texts()]


def mark_document(page: Page) -> None:
    """A flag that only survives if the page is not reloaded."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page reloaded instead of rendering in place"


def choose_with_file_chooser(page: Page, path) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Choose a photo", exact=True).click()
    chooser.value.set_files(path)


def data_transfer(page: Page, data: bytes, name: str, mime: str):
    """A DataTransfer holding a File built in the page from these bytes."""
    return page.evaluate_handle(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            return transfer;
        }""",
        [base64.b64encode(data).decode("ascii"), name, mime],
    )


@pytest.mark.browser
def test_it_recognizes_a_photo_chosen_with_the_file_chooser(page, photos):
    mark_document(page)
    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")

    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#preview")).to_be_visible()
    percentages = shown_percentages(page)
    assert percentages == sorted(percentages, reverse=True)
    assert sum(percentages) == pytest.approx(100, abs=2)
    exact = [float(p) for p in rows(page).evaluate_all("items => items.map(i => i.dataset.probability)")]
    assert sum(exact) == pytest.approx(1, abs=1e-3)
    expect(rows(page).locator(".domain")).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#model-info")).to_have_text("tiny-wildlife v1")
    expect(page.locator("#timing")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.locator("#filter-used")).to_have_text("all")
    expect(page.locator("#error")).to_be_hidden()
    assert_not_reloaded(page)


@pytest.mark.browser
def test_it_shows_a_busy_state_while_waiting(page, photos):
    page.evaluate("""() => {
        window.__busy = [];
        const card = document.getElementById("result-card");
        new MutationObserver(() => window.__busy.push([
            card.getAttribute("aria-busy"), document.querySelector("#submit .button-text").textContent,
        ])).observe(card, { attributes: true, attributeFilter: ["aria-busy"] });
    }""")

    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")

    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#result-card")).to_have_attribute("aria-busy", "false")
    assert page.evaluate("window.__busy")[0] == ["true", "Recognizing…"]
    expect(page.locator("#submit")).to_have_text("Recognize")


@pytest.mark.browser
def test_it_recognizes_a_photo_dropped_on_the_drop_zone(page, photos):
    mark_document(page)
    transfer = data_transfer(page, (photos / "plant" / "rose.jpg").read_bytes(), "rose.jpg", "image/jpeg")

    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#dropzone")).to_have_class(re.compile(r"\bis-dragover\b"))
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})

    expect(page.locator("#dropzone")).not_to_have_class(re.compile(r"\bis-dragover\b"))
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#file-name")).to_have_text("rose.jpg")
    assert_not_reloaded(page)


@pytest.mark.browser
def test_it_recognizes_a_pasted_image(page, photos):
    transfer = data_transfer(page, (photos / "animal" / "fox.jpg").read_bytes(), "image.png", "image/jpeg")

    page.evaluate("t => document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: t }))", transfer)

    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#file-name")).to_have_text("Pasted image")


@pytest.mark.browser
def test_changing_the_domain_filter_resubmits_and_keeps_only_that_domain(page, photos):
    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)

    page.locator("label[for=domain-bird]").click()

    expect(rows(page)).to_have_count(1)  # owl is the tiny model's only bird
    expect(rows(page).locator(".domain")).to_have_text(["bird"])
    expect(rows(page).locator(".share")).to_have_text(["100% among bird classes"])  # the share within the filter
    expect(rows(page).locator(".probability")).not_to_have_text(["100%"])  # and the share of all classes
    expect(page.locator("#filter-used")).to_have_text("bird")


@pytest.mark.browser
def test_a_refused_second_look_keeps_the_answer_and_its_filter_and_says_how_long_to_wait(page, photos, settings):
    from django.core.cache import cache

    cache.clear()  # the rate-limit counters: a full budget of one request
    settings.PAGE_RATE_LIMIT = "1/m"
    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)

    page.locator("label[for=domain-bird]").click()  # a second look at the same photo: over the limit

    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^Too many requests; try again in \d+ seconds?\.$"))
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)  # the answer on screen stays
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#domain-all")).to_be_checked()  # the filter as that answer had it
    expect(page.locator("#filter-used")).to_have_text("all")

    choose_with_file_chooser(page, photos / "plant" / "rose.jpg")  # a new photo refused: the old answer is not its answer
    expect(page.locator("#result")).to_be_hidden()
    expect(page.get_by_role("alert")).to_be_visible()
    cache.clear()


@pytest.mark.browser
def test_choosing_the_same_file_again_sends_it_again(page, photos):
    from webapp.models import Prediction

    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    with page.expect_response(lambda response: response.request.method == "POST") as sent:
        choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")  # edited on disk, or simply tried again
    assert sent.value.ok
    assert Prediction.objects.count() == 2


@pytest.mark.browser
def test_it_says_when_the_sites_allowed_class_list_limited_the_answer(page, photos, live_tiny):
    from tests.conftest import TINY_NAME
    from webapp import services

    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#allowed-note")).to_be_hidden()

    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\nfern\n")
    choose_with_file_chooser(page, photos / "plant" / "rose.jpg")
    expect(rows(page)).to_have_count(2)
    expect(page.locator("#allowed-note")).to_have_text("Only the classes on this site's allowed list were considered (2 in all).")


@pytest.mark.browser
def test_a_panorama_is_answered_with_a_note_that_only_its_middle_was_seen(page, photos, tmp_path):
    from PIL import Image

    turkey = Image.open(photos / "bird" / "turkey.jpg").convert("RGB")
    panorama = Image.new("RGB", (turkey.width * 4, turkey.height))
    for n in range(4):
        panorama.paste(turkey, (n * turkey.width, 0))
    panorama.save(tmp_path / "panorama.jpg")

    choose_with_file_chooser(page, tmp_path / "panorama.jpg")
    expect(page.locator("#crop-note")).to_have_text(re.compile(r"^The model looked only at the middle of this photo"))
    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")  # an ordinary photo: the note goes
    expect(page.locator("#crop-note")).to_be_hidden()


@pytest.mark.browser
@pytest.mark.parametrize("over", [None, 1])  # well over a 2 KB limit; one byte over a limit of the file's size less one
def test_a_file_over_the_size_limit_is_refused_before_it_is_sent(open_page, photos, settings, over):
    from recognizer.preprocessing import size_texts

    photo = photos / "bird" / "turkey.jpg"
    # in force when the page is rendered: it tells the script the limit
    settings.UPLOAD_MAX_BYTES = 2_000 if over is None else photo.stat().st_size - over
    page = open_page()
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    choose_with_file_chooser(page, photo)

    size, limit = size_texts(photo.stat().st_size, settings.UPLOAD_MAX_BYTES)  # as the server would say it
    assert size != limit
    expect(page.get_by_role("alert")).to_have_text(f"The file is {size}; the limit is {limit}. Send a smaller copy.")
    page.locator("label[for=domain-bird]").click()  # another look at it is refused the same way
    expect(page.get_by_role("alert")).to_be_visible()
    page.wait_for_load_state("networkidle")  # a request the click started would have been seen by now
    assert posts == []


@pytest.mark.browser
def test_it_shows_the_servers_message_for_a_pdf(page, artifacts):
    page.set_input_files("#image", files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF}])

    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("PDF")
    expect(page.locator("#error")).to_contain_text("PDF")
    expect(page.locator("#result")).to_be_hidden()
    page.screenshot(path=artifacts / "page-desktop-error.png")


@pytest.mark.browser
def test_it_asks_for_a_photo_when_submitted_empty(page):
    page.get_by_role("button", name="Recognize").click()

    expect(page.locator("#error")).to_have_text("Choose a photo first.")


@pytest.mark.browser
def test_without_javascript_the_server_renders_the_result(open_page, photos, artifacts):
    page = open_page(**PHONE, java_script_enabled=False)
    page.set_input_files("#image", photos / "bird" / "turkey.jpg")
    page.locator("label[for=domain-bird]").click()

    page.get_by_role("button", name="Recognize").click()

    expect(rows(page)).to_have_count(1)
    expect(rows(page).locator(".domain")).to_have_text(["bird"])
    expect(page.locator("#filter-used")).to_have_text("bird")
    expect(page.locator("#model-info")).to_have_text("tiny-wildlife v1")
    expect(page.locator(".result-photo")).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    expect(page.locator("#domain-bird")).to_be_checked()
    page.screenshot(path=artifacts / "page-phone-nojs-result.png", full_page=True)


@pytest.mark.browser
def test_without_javascript_a_pdf_shows_the_error_page(open_page):
    page = open_page(java_script_enabled=False)
    page.set_input_files("#image", files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF}])

    page.get_by_role("button", name="Recognize").click()

    expect(page.get_by_role("alert")).to_contain_text("PDF")
    expect(page.locator("#result")).to_be_hidden()


@pytest.mark.browser
@pytest.mark.parametrize(
    "name, options",
    [("phone", PHONE), ("desktop", DESKTOP), ("phone-dark", {**PHONE, "color_scheme": "dark"})],
)
def test_the_result_fits_the_screen(open_page, photos, artifacts, name, options):
    # Reduced motion makes the scroll to the result instant, so the viewport shot shows where it ends.
    page = open_page(**options, reduced_motion="reduce")
    page.screenshot(path=artifacts / f"page-{name}-empty.png", full_page=True)
    choose_with_file_chooser(page, photos / "bird" / "snowy-owl.jpg")
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    page.wait_for_function("document.getElementById('preview').complete")

    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    page.screenshot(path=artifacts / f"page-{name}-result.png", full_page=True)
    page.screenshot(path=artifacts / f"page-{name}-result-viewport.png")


@pytest.mark.browser
def test_the_verdict_comes_first_and_the_heat_map_toggle_shows_where_the_model_looked(page, photos, artifacts):
    mark_document(page)
    choose_with_file_chooser(page, photos / "animal" / "zebra.jpg")
    expect(rows(page)).to_have_count(TINY_CLASS_COUNT)
    expect(page.locator("#verdict-text")).not_to_be_empty()
    expect(page.locator("#verdict-domain")).to_have_text(re.compile(r"^Domain: (animal|bird|plant|other) \(\d+% sure\)$"))
    verdict_box, list_box = page.locator("#verdict").bounding_box(), page.locator("#predictions").bounding_box()
    assert verdict_box["y"] + verdict_box["height"] <= list_box["y"]  # the verdict first, the labels below
    expect(page.locator("#heatmap")).to_be_hidden()

    page.locator("#explain").check()
    expect(page.locator("#heatmap")).to_be_visible()
    assert page.locator("#heatmap").get_attribute("src").startswith("data:image/png;base64,")
    page.screenshot(path=artifacts / "page-desktop-verdict-heatmap.png", full_page=True)
    page.locator("#explain").uncheck()
    expect(page.locator("#heatmap")).to_be_hidden()
    assert_not_reloaded(page)
