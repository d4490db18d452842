from __future__ import annotations

import io

import pytest
from django.test import override_settings

from consult import files
from tests.consult import files_corpus


def test_it_still_refuses_a_truncated_photo_after_a_pdf_was_made_in_the_process() -> None:
    from PIL import ImageFile

    import consult.pdf  # noqa: F401  (imports WeasyPrint, which loosens Pillow globally)

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with override_settings(UPLOAD_MAX_FILE_BYTES=20 * 1024 * 1024), pytest.raises(files.UploadRefused) as refused:
        files.check_upload(io.BytesIO(files_corpus.truncated_jpeg()), "cut.jpg")
    assert refused.value.code == "damaged"
