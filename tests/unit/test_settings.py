"""Settings that depend on the runtime."""

from __future__ import annotations

from mediaindex.settings import AWS_MAX_FORM_UPLOAD_BYTES, MiB, Settings


def test_form_uploads_fit_a_lambda_request_on_aws_unless_configured() -> None:
    # A Lambda behind API Gateway refuses requests over 6 MB, binary bodies arrive base64-encoded
    assert Settings(runtime="local").max_form_upload_bytes == 32 * MiB
    assert Settings(runtime="aws").max_form_upload_bytes == AWS_MAX_FORM_UPLOAD_BYTES
    assert AWS_MAX_FORM_UPLOAD_BYTES * 4 / 3 < 6_000_000
    # An explicit value wins on both runtimes
    assert Settings(runtime="aws", max_form_upload_bytes=MiB).max_form_upload_bytes == MiB
