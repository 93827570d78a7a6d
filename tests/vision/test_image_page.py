"""The image page: it serves each image task over HTTP as the folder's pipeline does, and draws boxes and masks in a
real browser."""

import pytest

from llmkit.errors import UserError
from llmkit.ui.models import build_models_app
from llmkit.vision.tasks import image_task
from tests.helpers import CHROMIUM_FLAGS, require_chromium


@pytest.fixture(scope="module")
def app(image_models):
    demo = build_models_app(images=[str(p) for p in image_models.values()])
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo
    demo.close()


def test_the_task_comes_from_the_config_and_a_text_model_is_refused(image_models, tiny_run):
    for task, folder in image_models.items():
        assert image_task(folder) == task
    with pytest.raises(UserError, match="not an image classifier, detector or segmenter"):
        image_task(tiny_run[0])


def test_every_image_task_answers_over_http_as_its_pipeline_does(app, image_models):
    from gradio_client import Client, handle_file
    from PIL import Image
    from transformers import pipeline

    client = Client(app.local_url, verbose=False)
    example = image_models["object-detection"] / "examples" / "example-1.png"
    image = Image.open(example)

    probs = client.predict(handle_file(example), api_name="/classify_image")
    expected = pipeline("image-classification", model=str(image_models["image-classification"]))(image)[0]
    assert probs["label"] == expected["label"] and len(probs["confidences"]) == 3
    assert abs(sum(c["confidence"] for c in probs["confidences"]) - 1) < 1e-4

    drawn = client.predict(handle_file(example), 0.0, api_name="/detect")
    boxes = pipeline("object-detection", model=str(image_models["object-detection"]))(image, threshold=0.0)
    assert len(drawn["annotations"]) == len(boxes) > 0  # every detection above the threshold is drawn
    assert all(a["label"].split()[0] in {"zero", "one", "four"} for a in drawn["annotations"])
    assert client.predict(handle_file(example), 1.0, api_name="/detect")["annotations"] == []

    masks = client.predict(handle_file(example), api_name="/segment")
    found = pipeline("image-segmentation", model=str(image_models["image-segmentation"]))(image)
    assert sorted(a["label"] for a in masks["annotations"]) == sorted(s["label"] for s in found)


def test_a_file_that_is_not_an_image_is_named(app, tmp_path):
    # Gradio could not open it before the app's code ran: the page and gradio_client got a bare "Error"
    from gradio_client import Client, handle_file

    client = Client(app.local_url, verbose=False)
    fake = tmp_path / "photo.png"
    fake.write_text("a text file named like an image")
    for api, extra in (("/classify_image", ()), ("/detect", (0.3,)), ("/segment", ())):
        with pytest.raises(
            Exception, match=f"{api} could not read input 1, 'Image': it got the file 'photo.png'"
        ):
            client.predict(handle_file(fake), *extra, api_name=api)


def test_a_weights_file_cut_short_is_named(image_models, tmp_path):
    # the pipeline's loading raised safetensors' "invalid header length" as a traceback at the app's start
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(image_models["image-classification"], cut)
    with open(cut / "model.safetensors", "r+b") as f:
        f.truncate(500)
    with pytest.raises(UserError, match="could not be loaded: model.safetensors .*a save or copy cut short"):
        build_models_app(images=[str(cut)])


@pytest.mark.slow
@pytest.mark.browser
def test_boxes_and_masks_are_drawn_in_a_real_browser(app, tmp_path):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app.local_url, wait_until="load")
        for tab, task in (("Detect objects", "object-detection"), ("Segment an image", "image-segmentation")):
            page.get_by_role("tab", name=tab).click()
            panel = page.locator(f"#{task}-output")
            page.get_by_role("tabpanel").locator("img[src*=example-1]").click()  # the two-digit example
            if task == "object-detection":
                page.get_by_label("number input for Score threshold").fill("0")
            page.locator(f"#{task}-go").click()
            overlays = panel.locator("img.mask")  # one drawn layer per box or class mask, over the picture
            overlays.first.wait_for(timeout=30_000)
            legend = " ".join(panel.locator(".legend-item").all_inner_texts())
            assert overlays.count() >= 1 and any(name in legend for name in ("zero", "one", "four")), legend
            page.screenshot(path=str(tmp_path / f"{task}.png"), full_page=True)
        browser.close()


def test_grey_transparent_and_huge_uploads_are_drawn_at_a_bounded_size(image_models):
    from PIL import Image
    from transformers import pipeline

    from llmkit.ui.vision import MAX_SIDE, classify_image, detect_objects, segment_image

    huge = Image.new("RGBA", (4000, 3000), (200, 180, 160, 128))
    grey = Image.new("L", (40, 30), 128)
    detector = pipeline("object-detection", model=str(image_models["object-detection"]))
    segmenter = pipeline("image-segmentation", model=str(image_models["image-segmentation"]))
    for image in (huge, grey):
        drawn, boxes = detect_objects(detector, image, 0.0)
        shown, masks = segment_image(segmenter, image)
        assert drawn.mode == shown.mode == "RGB" and max(shown.size) <= MAX_SIDE
        assert boxes and all(max(b[0]) <= max(drawn.size) for b in boxes)  # boxes in the shown image's pixels
        assert masks and all(m.shape == shown.size[::-1] and m.max() <= 1 for m, _ in masks)
    classifier = pipeline("image-classification", model=str(image_models["image-classification"]))
    assert abs(sum(classify_image(classifier, huge).values()) - 1) < 1e-4
    assert detect_objects(detector, None, 0.5) is None and classify_image(classifier, None) == {}


@pytest.mark.browser
def test_a_text_file_uploaded_as_an_image_is_named_on_the_page(app, tmp_path):
    # the page showed only "Error" for a file Gradio could not open as an image
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    fake = tmp_path / "holiday.png"
    fake.write_text("not an image")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app.local_url, wait_until="load")
        page.get_by_role("tab", name="Classify an image").click()
        page.locator("#image-classification-input input[type=file]").set_input_files(str(fake))
        page.locator("#image-classification-go").click()
        toast = page.locator("[data-testid=toast-body]").first
        toast.wait_for(timeout=30_000)
        assert "it got the file 'holiday.png', and takes an image file" in toast.inner_text()
        browser.close()
