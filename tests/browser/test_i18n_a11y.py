"""The page in Chinese and English in a real chromium: fonts, a phone, the keyboard alone, and axe-core's audit."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, page_opener
from tests.conftest import GOLDEN
from tests.imagenet_tiny import CLASSES, NAME, save_imagenet_tiny

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
LOCALES = {"en": "en-US", "zh": "zh-CN"}
PHOTO = GOLDEN / "animal" / "tiger.jpg"  # a real photo of the repository; the tiny model's answer is arbitrary


@pytest.fixture(scope="module")
def imagenet_tiny(tmp_path_factory):
    return save_imagenet_tiny(tmp_path_factory.mktemp("imagenet-tiny"))


@pytest.fixture
def live(transactional_db, settings, imagenet_tiny, live_server):
    """The ImageNet-classes tiny model active for the live server (another thread, so committed rows)."""
    from webapp import runtime, services

    runtime.reset()
    settings.DEFAULT_MODEL_NAME = NAME
    services.model_version_register(artifact_path=imagenet_tiny, activate=True)
    yield live_server
    runtime.reset()


@pytest.fixture
def open_in(browser, live):
    """open_in(language, **context options) -> the page as a browser preferring that language shows it."""
    with page_opener(browser, live.url + "/") as open_:
        yield lambda language, **options: open_(locale=LOCALES[language], **options)


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        why = f"{AXE} is missing; `make setup-dev` installs axe-core (npm ci --prefix tests/browser)."
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return AXE.read_text(encoding="utf-8")


def recognize(page: Page) -> None:
    page.set_input_files("#image", PHOTO)
    expect(page.locator("#predictions li.prediction")).to_have_count(len(CLASSES))


def recognize_among_animals(page: Page) -> None:
    """An answer with a domain filter: each row then also says its share among that domain's classes."""
    recognize(page)
    page.locator("label[for=domain-animal]").click()
    expect(page.locator("#filter-used")).to_have_text(re.compile("animal|动物"))
    expect(page.locator("#predictions .share").first).to_be_visible()


def shown_labels(page: Page) -> list[str]:
    return page.locator("#predictions .label").all_inner_texts()


def serious_violations(page: Page, axe_source: str) -> list[dict]:
    page.evaluate(axe_source)  # the page's Content-Security-Policy refuses inline script tags; the devtools protocol is not one
    report = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in report["violations"] if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.browser
def test_a_chinese_browser_sees_the_page_and_the_answer_in_chinese(open_in, artifacts):
    page = open_in("zh")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("h1")).to_have_text("野生动植物识别")
    expect(page.get_by_text("选择照片", exact=True)).to_be_visible()
    recognize(page)
    assert sorted(shown_labels(page)) == sorted(chinese for _, chinese in CLASSES.values())
    assert set(page.locator("#predictions .domain").all_inner_texts()) <= {"动物", "植物", "其他"}
    expect(page.locator("#filter-used")).to_have_text("全部")
    han = re.compile(r"[\u4e00-\u9fff]")
    expect(page.locator("#verdict-text")).to_have_text(han)  # the verdict's sentence, in Chinese
    expect(page.locator("#status")).to_have_text(han)
    expect(page.locator("#verdict-domain")).to_have_text(re.compile(r"^领域：(动物|鸟类|植物|其他)（把握 \d+%）$"))
    page.screenshot(path=artifacts / "i18n-zh-desktop.png", full_page=True)


@pytest.mark.browser
def test_chinese_text_renders_with_real_glyphs_not_empty_boxes(open_in):
    page = open_in("zh")
    # Without a CJK font every character is drawn as the same .notdef box; real glyphs differ from each other.
    differ = page.evaluate(
        """() => {
            const font = getComputedStyle(document.querySelector('h1')).font;
            const draw = (text) => {
                const canvas = document.createElement('canvas');
                canvas.width = 64; canvas.height = 64;
                const ctx = canvas.getContext('2d');
                ctx.font = font; ctx.textBaseline = 'top'; ctx.fillText(text, 4, 4);
                return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(',');
            };
            return ['野', '生', '识', '别'].map(draw).filter((v, i, all) => all.indexOf(v) === i).length;
        }"""
    )
    assert differ == 4, "CJK characters render as identical boxes: install fonts-noto-cjk"


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh", "en"])
def test_on_a_phone_the_page_fits_the_screen_in_either_language(open_in, artifacts, language):
    page = open_in(language, **PHONE)
    recognize(page)
    page.screenshot(path=artifacts / f"i18n-{language}-phone.png", full_page=True)
    page.evaluate("window.scrollTo(0, 0)")  # the answer scrolled into view; boxes are measured from the top
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways on a phone: {widths}"
    switcher, title = page.locator(".language-switcher").bounding_box(), page.locator("h1").bounding_box()
    assert switcher["y"] + switcher["height"] <= title["y"], "the language switcher overlaps the title"


@pytest.mark.browser
def test_on_a_phone_a_filtered_answer_breaks_no_label_inside_a_word(open_in, artifacts):
    page = open_in("en", **PHONE)
    recognize_among_animals(page)
    page.screenshot(path=artifacts / "i18n-en-phone-filtered.png", full_page=True)
    broken = page.evaluate(
        """() => [...document.querySelectorAll('#predictions .label')].flatMap(label => {
            const text = label.firstChild, broken = [], word = /\\S+/g;
            for (let m; (m = word.exec(text.data));) {
                const range = document.createRange();
                range.setStart(text, m.index);
                range.setEnd(text, m.index + m[0].length);
                const tops = [...range.getClientRects()].map(box => box.top);
                if (Math.max(...tops) - Math.min(...tops) > 4) broken.push(m[0]);  // the word spans two lines
            }
            return broken;
        })"""
    )
    assert broken == [], f"words broken across lines: {broken}"


@pytest.mark.browser
def test_the_switcher_changes_the_language_with_the_keyboard_alone(open_in):
    page = open_in("zh")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("English")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Wildlife recognizer")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator('button[aria-current="true"]')).to_have_text("English")


@pytest.mark.browser
def test_switching_the_language_answers_the_same_photo_again_in_the_new_language(open_in):
    from webapp.models import Prediction

    page = open_in("en")
    recognize_among_animals(page)  # an answer with a filter on screen
    english = sorted(shown_labels(page))

    page.get_by_role("button", name="简体中文").click()

    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#filter-used")).to_have_text("动物")  # the same filter, said in Chinese
    expect(page.locator("#predictions li.prediction")).to_have_count(len(english))
    assert sorted(shown_labels(page)) != english and all(re.search(r"[\u4e00-\u9fff]", label) for label in shown_labels(page))
    expect(page.locator("#file-name")).to_have_text(PHOTO.name)
    assert page.locator("#domain-animal").is_checked()
    assert Prediction.objects.count() == 3  # all, animals, then animals again in Chinese
    carried = page.evaluate("""() => new Promise((resolve) => {
        const opening = indexedDB.open("recognizer", 1);
        opening.onsuccess = () => {
            const reading = opening.result.transaction("photos").objectStore("photos").get("carried-photo");
            reading.onsuccess = () => resolve(reading.result === undefined ? null : "still there");
        };
    })""")
    assert carried is None  # the photo is not kept in the browser once answered again


@pytest.mark.browser
def test_switching_the_language_while_a_new_photo_is_on_its_way_answers_that_photo(open_in):
    from webapp.models import Prediction

    page = open_in("en")
    recognize(page)  # the tiger answered
    held = []  # the next photo's request, never let through: the page navigates away from it

    def hold_the_first_post(route):
        if route.request.method == "POST" and not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/", hold_the_first_post)
    other = GOLDEN / "bird" / "turkey.jpg"
    page.set_input_files("#image", other)  # on its way, held
    for _ in range(400):  # the route's handler runs as Playwright dispatches its events: while the page waits
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    expect(page.locator("#recognize-form")).to_have_class(re.compile("is-busy"))

    page.get_by_role("button", name="简体中文").click()

    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#file-name")).to_have_text(other.name)
    expect(page.locator("#predictions li.prediction")).to_have_count(len(CLASSES))
    # The new page sent the turkey, not the tiger whose answer was on screen when the language was switched.
    sent = list(Prediction.objects.order_by("id").values_list("input_sha256", flat=True))
    assert sent == [hashlib.sha256(PHOTO.read_bytes()).hexdigest(), hashlib.sha256(other.read_bytes()).hexdigest()]


@pytest.mark.browser
def test_a_photo_is_chosen_recognized_and_filtered_with_the_keyboard_alone(open_in):
    page = open_in("en")
    # Playwright asks the browser to hand it file choosers without waiting for the answer, and a key press is sent
    # at once (a click first waits for the element), so the chooser is awaited before the focus travels: the round
    # trips below let that request land before Space opens the chooser, which headless Chromium otherwise cancels.
    with page.expect_file_chooser() as chooser:
        for _ in range(8):  # past the language buttons to the photo input
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "image":
                break
        assert page.evaluate("document.activeElement.id") == "image"
        page.keyboard.press("Space")
    chooser.value.set_files(PHOTO)
    expect(page.locator("#predictions li.prediction")).to_have_count(len(CLASSES))
    page.keyboard.press("Tab")  # the domain filter: a radio group, moved with the arrow keys
    assert page.evaluate("document.activeElement.name") == "domain"
    page.keyboard.press("ArrowRight")  # All -> Animals, which re-recognizes
    expect(page.locator("#filter-used")).to_have_text("animal")
    expect(page.locator("#predictions .domain")).to_have_text(["animal", "animal"])


@pytest.mark.browser
@pytest.mark.parametrize("language, scheme", [("en", "light"), ("zh", "light"), ("zh", "dark"), ("en", "dark")])
def test_axe_finds_no_serious_violations_before_and_after_an_answer(open_in, axe_source, artifacts, language, scheme):
    page = open_in(language, color_scheme=scheme)
    before = serious_violations(page, axe_source)
    recognize(page)
    after = serious_violations(page, axe_source)
    page.screenshot(path=artifacts / f"i18n-{language}-{scheme}.png")
    report = artifacts / f"axe-{language}-{scheme}.json"
    report.write_text(json.dumps({"before": before, "after": after}, ensure_ascii=False, indent=2), encoding="utf-8")
    assert before == [] and after == [], f"see {report}"


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations_in_an_answer_filtered_by_domain(open_in, axe_source, artifacts, scheme):
    page = open_in("en", color_scheme=scheme)
    recognize_among_animals(page)
    violations = serious_violations(page, axe_source)
    page.screenshot(path=artifacts / f"i18n-en-{scheme}-filtered.png")
    assert violations == [], violations


@pytest.mark.browser
def test_the_audit_reports_a_control_without_a_label(open_in, axe_source):
    page = open_in("zh")
    page.evaluate("document.querySelector('#recognize-form').append(Object.assign(document.createElement('input'), {type: 'text'}))")
    assert "label" in {v["id"] for v in serious_violations(page, axe_source)}


@pytest.mark.browser
def test_the_pages_policy_stops_an_injected_inline_script_and_lets_its_own_scripts_run(open_in):
    page = open_in("en")
    expect(page.locator("html")).to_have_class("js")  # early.js ran before the first paint
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    page.evaluate("document.head.append(Object.assign(document.createElement('script'), {textContent: 'window.__injected = 1'}))")
    recognize(page)  # app.js and the catalog ran: the answer is drawn, its bars styled
    assert page.evaluate("window.__injected") is None
    assert refused, "the browser reported no refused inline script"
