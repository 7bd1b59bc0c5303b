"""The "Wrong? Tell us what it is" form in a real chromium: suggestions from the model's classes, sent in place."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_page import choose_with_file_chooser, rows
from tests.synthetic import picture


@pytest.fixture
def keeping(settings, tmp_path):
    settings.FEEDBACK_ENABLED = True
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.browser
def test_a_wrong_answer_is_reported_from_the_page_without_reloading_it(keeping, page, tmp_path, artifacts):
    from webapp.models import Feedback, KeptPhoto

    photo = tmp_path / "fox.jpg"
    picture("red-stripes", seed=3, size=320).save(photo, quality=92)
    page.evaluate("window.__notReloaded = true")
    choose_with_file_chooser(page, photo)
    expect(rows(page)).to_have_count(4)
    form = page.locator("#feedback-form")
    expect(form).to_be_visible()
    expect(page.get_by_text("Wrong? Tell us what it is")).to_be_visible()
    suggestions = page.locator(f"#{page.locator('#feedback-label').get_attribute('list')} option")
    assert sorted(suggestions.evaluate_all("options => options.map(o => o.value)")) == ["cat", "fern", "owl", "teapot"]
    page.locator("#feedback-label").fill("Red fox")
    page.locator("#feedback-domain").select_option("animal")
    page.locator("#feedback-comment").fill("in the meadow")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#feedback-status")).to_have_text("Thank you: an expert will look at it.")
    assert page.evaluate("window.__notReloaded === true")
    page.screenshot(path=str(artifacts / "feedback-form.png"), full_page=True)
    item = Feedback.objects.get()
    assert (item.label, item.domain, item.comment, item.source) == ("Red fox", "animal", "in the meadow", "page")
    assert KeptPhoto.objects.get(prediction=item.prediction).image
    expect(page.locator(".privacy-note")).to_contain_text("kept for 7 days")


@pytest.mark.browser
def test_yes_it_is_right_confirms_the_answer_in_place_whatever_the_label_field_holds(keeping, page, tmp_path):
    from webapp.models import Feedback

    photo = tmp_path / "stripes.jpg"
    picture("red-stripes", seed=3, size=320).save(photo, quality=92)
    choose_with_file_chooser(page, photo)
    expect(rows(page)).to_have_count(4)
    page.locator("#feedback-label").fill("Red fox")  # typed, then the person decides the answer was right after all
    page.get_by_role("button", name="Yes, it is right").click()
    expect(page.locator("#feedback-status")).to_have_text("Thank you: an expert will look at it.")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    item = Feedback.objects.get()
    assert (item.correct, item.label, item.source) == (True, "", "page")
    assert item.domain == item.prediction.verdict["domain"]


@pytest.mark.browser
def test_another_filter_for_the_same_photo_keeps_what_was_typed_and_sends_it_for_the_new_answer(keeping, page, photos):
    from webapp.models import Feedback, Prediction

    choose_with_file_chooser(page, photos / "bird" / "turkey.jpg")
    expect(rows(page)).to_have_count(4)
    page.locator("#feedback-label").fill("wild turkey")
    page.locator("#feedback-comment").fill("in the garden")
    page.locator("label[for=domain-bird]").click()  # a second look, among birds only
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#feedback-label")).to_have_value("wild turkey")
    expect(page.locator("#feedback-comment")).to_have_value("in the garden")
    newest = Prediction.objects.order_by("-pk").first()
    expect(page.locator("#feedback-form")).to_have_attribute("action", f"/predictions/{newest.pk}/feedback")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#feedback-status")).to_have_text("Thank you: an expert will look at it.")
    item = Feedback.objects.get()
    assert (item.prediction_id, item.label, item.comment) == (newest.pk, "wild turkey", "in the garden")
    choose_with_file_chooser(page, photos / "plant" / "rose.jpg")  # a new photo: a fresh form
    expect(page.locator("#feedback-label")).to_have_value("")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
