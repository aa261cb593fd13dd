"""Avatars, fast: the rules (domain/avatars.py), the imaging (lib/images.py, Pillow), the signed
URL (lib/avatars.py, signed offline by botocore) checked by the local S3's correction 12 as S3
checks it, the key-upload service and route, and the avatar Lambda's reading of its notices."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from PIL import Image

from app import create_app
from devstack import lambdas
from devstack.moto_corrections import s3 as presigned
from domain import avatars
from domain.avatars import AvatarRefused
from domain.errors import InvalidInput, MalformedRequest, NotPermitted, Unavailable
from lib import aws
from lib.avatars import AvatarBucket
from lib.config import LAMBDAS, Settings
from lib.images import square_jpeg
from services.avatars import AvatarUploadUrl

ORIGIN = "http://localhost:3000"
ENDPOINT = "http://127.0.0.1:4566"


def s3_client():
    """The API's S3 client for a local endpoint (lib/aws.py): presigning is done offline, no
    request is sent."""
    return aws.client(Settings(aws_endpoint_url=ENDPOINT), "s3")


@pytest.fixture
def bucket() -> AvatarBucket:
    return AvatarBucket(s3_client(), "cruddur-assets")


def image(fmt: str = "PNG", size: tuple[int, int] = (300, 200), mode: str = "RGB", color=(200, 10, 10), **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, fmt, **save)
    return out.getvalue()


# -- the rules -------------------------------------------------------------------------------
def test_the_allowed_extensions_and_the_types_their_uploads_must_have():
    assert avatars.content_type_of("jpg") == avatars.content_type_of(".JPEG") == "image/jpeg"
    assert avatars.content_type_of("png") == "image/png"
    for refused in ("exe", "svg", "html", "", None, 3, ["jpg"], "jpg/../x"):
        assert avatars.content_type_of(refused) is None, refused


def test_an_upload_key_names_its_owner_and_nothing_can_leave_the_prefix():
    assert avatars.upload_key("sub-1") == "uploads/avatars/sub-1"
    assert avatars.avatar_key("sub-1") == "avatars/sub-1.jpg"
    assert avatars.owner_of_upload("uploads/avatars/sub-1") == "sub-1"
    for key in ("uploads/avatars/a/b", "uploads/avatars/", "avatars/sub-1.jpg", "uploads/avatars/../x",
                "uploads/avatars/sub.jpg"):
        assert avatars.owner_of_upload(key) is None, key
    for owner in ("../x", "a/b", "", "a.b"):
        with pytest.raises(ValueError):
            avatars.upload_key(owner)
        with pytest.raises(ValueError):
            avatars.avatar_key(owner)


# -- the imaging -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_every_allowed_format_becomes_a_square_jpeg(fmt):
    made = Image.open(io.BytesIO(square_jpeg(image(fmt, (300, 200)))))
    assert made.format == "JPEG" and made.size == (avatars.AVATAR_SIDE, avatars.AVATAR_SIDE)
    assert made.mode == "RGB"


def test_the_centre_square_is_kept_and_transparency_is_white():
    wide = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    wide.paste((0, 0, 255, 255), (100, 0, 200, 100))  # an opaque blue centre, transparent sides
    out = io.BytesIO()
    wide.save(out, "PNG")
    made = Image.open(io.BytesIO(square_jpeg(out.getvalue(), side=64))).convert("RGB")
    r, g, b = made.getpixel((32, 32))
    assert b > 200 and r < 60 and g < 60  # the centre, blue
    small = Image.open(io.BytesIO(square_jpeg(image("PNG", (10, 10), "RGBA", (0, 0, 0, 0)), side=16)))
    assert min(small.convert("RGB").getpixel((8, 8))) > 240  # transparent, over white


def test_a_photo_taken_sideways_is_turned_upright():
    photo = Image.new("RGB", (200, 100), (255, 0, 0))
    photo.paste((0, 255, 0), (0, 0, 100, 100))  # green on the left
    exif = photo.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    out = io.BytesIO()
    photo.save(out, "JPEG", exif=exif)
    made = Image.open(io.BytesIO(square_jpeg(out.getvalue(), side=100))).convert("RGB")
    assert made.getpixel((50, 10))[1] > 200  # the left became the top


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  b"%PDF-1.4 ...", image("BMP"), image("TIFF")])
def test_what_is_not_an_image_of_an_allowed_format_is_refused(data):
    with pytest.raises(AvatarRefused) as refused:
        square_jpeg(data)
    assert refused.value.code == "not_an_image"


def test_a_truncated_image_is_refused():
    whole = image("PNG", (400, 400), color=(1, 2, 3))
    with pytest.raises(AvatarRefused) as refused:
        square_jpeg(whole[: len(whole) // 2])
    assert refused.value.code == "not_an_image"


def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = image("PNG", (20_000, 20_000), mode="1", color=0)  # 400 megapixels in a few kilobytes
    assert len(bomb) < 200_000
    with pytest.raises(AvatarRefused) as refused:
        square_jpeg(bomb)
    assert refused.value.code == "image_too_large"
    with pytest.raises(AvatarRefused):
        square_jpeg(image("PNG", (101, 100)), max_pixels=100 * 100)


# -- the signed URL, and S3's check of it (correction 12) ------------------------------------
def environ_of(url: str, method: str = "PUT", content_type: str | None = "image/jpeg", host: str | None = None):
    parts = urlsplit(url)
    environ = {"REQUEST_METHOD": method, "RAW_URI": parts.path + ("?" + parts.query if parts.query else ""),
               "PATH_INFO": parts.path, "QUERY_STRING": parts.query, "HTTP_HOST": host or parts.netloc}
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    return environ


def refusal(environ, now=None):
    return presigned.refusal(environ, {"test": "test"}, now or datetime.now(timezone.utc))


def test_the_url_is_for_the_owners_key_the_type_and_five_minutes(bucket):
    url = bucket.upload_url("sub-ana", "image/jpeg")
    parts = urlsplit(url)
    assert parts.path == "/cruddur-assets/uploads/avatars/sub-ana"
    assert "X-Amz-Expires=300" in parts.query and "content-type" in parts.query
    assert refusal(environ_of(url)) is None


def test_s3_refuses_the_url_for_another_key_type_time_or_signer(bucket):
    url = bucket.upload_url("sub-ana", "image/jpeg")
    other_key = url.replace("/uploads/avatars/sub-ana?", "/uploads/avatars/sub-bo?")
    assert refusal(environ_of(other_key))[0] == "SignatureDoesNotMatch"
    assert refusal(environ_of(url, content_type="image/png"))[0] == "SignatureDoesNotMatch"
    assert refusal(environ_of(url, content_type=None))[0] == "SignatureDoesNotMatch"
    assert refusal(environ_of(url, method="GET"))[0] == "SignatureDoesNotMatch"
    assert refusal(environ_of(url, host="127.0.0.1:9"))[0] == "SignatureDoesNotMatch"
    later = datetime.now(timezone.utc) + timedelta(seconds=avatars.UPLOAD_URL_SECONDS + 5)
    assert refusal(environ_of(url), now=later) == ("AccessDenied", "Request has expired")
    assert presigned.refusal(environ_of(url), {"other": "test"}, datetime.now(timezone.utc))[0] == "InvalidAccessKeyId"
    forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert refusal(environ_of(forged))[0] == "SignatureDoesNotMatch"


def test_requests_signed_in_their_headers_are_left_to_moto():
    assert refusal(environ_of("http://127.0.0.1:4566/cruddur-assets/avatars/x.jpg", method="GET")) is None


def test_the_middleware_answers_s3s_403_and_lets_a_good_url_through(bucket):
    url = bucket.upload_url("sub-ana", "image/jpeg")
    seen = []
    app = presigned.PresignedUrls(lambda environ, start: seen.append(environ) or [b"ok"], known={"test": "test"})
    statuses = []
    assert app(environ_of(url), lambda status, headers: statuses.append(status)) == [b"ok"]
    body = app(environ_of(url, content_type="text/plain"), lambda status, headers: statuses.append(status))
    assert statuses == ["403 Forbidden"] and b"<Code>SignatureDoesNotMatch</Code>" in body[0] and len(seen) == 1


# -- the key-upload service and route --------------------------------------------------------
def test_the_url_is_signed_for_the_callers_own_identity(world, ana, bucket):
    url = AvatarUploadUrl.run(bucket, world.parts.users, ana, {"extension": "JPG"})["url"]
    assert urlsplit(url).path == "/cruddur-assets/uploads/avatars/sub-ana"
    assert refusal(environ_of(url, content_type="image/jpeg")) is None


@pytest.mark.parametrize("body, error, code", [
    ({"extension": "exe"}, InvalidInput, "extension_invalid"),
    ({"extension": ""}, InvalidInput, "extension_invalid"),
    ({}, InvalidInput, "extension_invalid"),
    ({"extension": ["jpg"]}, InvalidInput, "extension_invalid"),
    ({"extension": "jpg", "key": "uploads/avatars/sub-bo"}, InvalidInput, "field_unknown"),
    ({"extension": "jpg", "cognito_user_uuid": "sub-bo"}, InvalidInput, "field_unknown"),
    (["jpg"], MalformedRequest, "body_invalid"),
])
def test_bad_bodies_are_refused_before_anything_is_signed(world, ana, bucket, body, error, code):
    with pytest.raises(error) as refused:
        AvatarUploadUrl.run(bucket, world.parts.users, ana, body)
    assert refused.value.codes == [code]


def test_without_an_assets_bucket_the_upload_is_unavailable(world, ana):
    with pytest.raises(Unavailable) as refused:
        AvatarUploadUrl.run(None, world.parts.users, ana, {"extension": "png"})
    assert refused.value.codes == ["avatars_unavailable"]


def test_a_caller_gone_from_the_users_gets_no_url(world, bucket):
    with pytest.raises(NotPermitted):
        AvatarUploadUrl.run(bucket, world.parts.users, {"uuid": "x", "handle": "nobody"}, {"extension": "png"})


def test_the_route_answers_the_final_frontends_call_with_its_preflight(world, bucket):
    world.person("ana", "Ana A")
    world.parts.avatars = bucket
    app = create_app(Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c",
                              frontend_url=ORIGIN), world.parts)
    client = app.test_client()
    preflight = client.options("/avatars/key_upload", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "accept,authorization,content-type"})
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    token = world.parts.tokens.issue("sub-ana")
    headers = {"Origin": ORIGIN, "Authorization": f"Bearer {token}", "Accept": "application/json"}
    answer = client.post("/avatars/key_upload", json={"extension": "png"}, headers=headers)
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert urlsplit(answer.json["url"]).path.endswith("/uploads/avatars/sub-ana")
    refused = client.post("/avatars/key_upload", json={"extension": "svg"}, headers=headers)
    assert refused.status_code == 422 and refused.json == ["extension_invalid"]
    assert client.post("/avatars/key_upload", json={"extension": "png"}, headers={"Origin": ORIGIN}).status_code == 401


# -- the avatar Lambda's notices -------------------------------------------------------------
@pytest.fixture
def avatar_lambda():
    return lambdas.load(LAMBDAS / "cruddur-avatar-processing.py")


def notice(*keys: str, bucket: str = "cruddur-assets") -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": bucket}, "object": {"key": key, "size": 1}}} for key in keys]})


def test_the_keys_of_a_notice_are_read_decoded_and_only_in_its_bucket(avatar_lambda):
    assert avatar_lambda.upload_keys(notice("uploads/avatars/a%2Bb+c"), "cruddur-assets") == ["uploads/avatars/a+b c"]
    assert avatar_lambda.upload_keys(notice("uploads/avatars/x", bucket="elsewhere"), "cruddur-assets") == []
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "cruddur-assets"})
    for body in (test_event, "not json", "[]", json.dumps({"Records": [1, {"s3": None}]})):
        assert avatar_lambda.upload_keys(body, "cruddur-assets") == []


class RecordingBucket:
    """An AvatarBucket's process, noted: refuses one key, fails on another (S3 down)."""
    bucket = "cruddur-assets"

    def __init__(self):
        self.processed: list[str] = []

    def process(self, key, make):
        self.processed.append(key)
        if key.endswith("refused"):
            raise AvatarRefused("not_an_image", "text")
        if key.endswith("down"):
            raise ConnectionError("S3 did not answer")
        return avatars.avatar_key(key.rsplit("/", 1)[1])


def test_a_refused_upload_is_dropped_and_a_failure_gives_its_message_back(avatar_lambda, monkeypatch):
    recorder = RecordingBucket()
    monkeypatch.setattr(avatar_lambda, "_bucket", recorder)
    event = {"Records": [{"messageId": "m1", "body": notice("uploads/avatars/ok")},
                         {"messageId": "m2", "body": notice("uploads/avatars/refused")},
                         {"messageId": "m3", "body": notice("uploads/avatars/down")},
                         {"messageId": "m4", "body": notice("uploads/avatars/ok2")}]}
    assert avatar_lambda.lambda_handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    assert recorder.processed == ["uploads/avatars/ok", "uploads/avatars/refused", "uploads/avatars/down",
                                  "uploads/avatars/ok2"]


def test_the_local_s3s_writes_are_kept_across_restarts_and_its_reads_are_not_serialised():
    from devstack.moto_corrections.dynamodb import is_s3_write

    header = {"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/s3/aws4_request, ..."}
    assert is_s3_write({"REQUEST_METHOD": "PUT", **header})
    assert is_s3_write({"REQUEST_METHOD": "PUT", "QUERY_STRING": "X-Amz-Credential=test%2F20261207%2Fus-east-1%2Fs3%2Faws4_request"})
    assert not is_s3_write({"REQUEST_METHOD": "GET", **header})
    assert not is_s3_write({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/sqs/aws4_request"})


def test_the_avatar_lambda_reaches_s3_where_dynamodb_is_elsewhere():
    """docker-compose.yml: DynamoDB on DynamoDB Local, S3 on moto. The local worker tells the
    Lambdas both, and the avatar Lambda's client takes S3's."""
    from devstack.stream_worker import lambda_environment
    from lib.lambda_support import client

    settings = Settings(aws_endpoint_url="http://aws:4566", assets_bucket="cruddur-assets",
                        service_endpoints=(("dynamodb", "http://dynamodb-local:8000"),))
    env = lambda_environment(settings, {})
    assert env["AWS_ENDPOINT_URL"] == "http://dynamodb-local:8000" and env["AWS_ENDPOINT_URL_S3"] == "http://aws:4566"
    assert env["ASSETS_BUCKET"] == "cruddur-assets"
    env = {**env, "AWS_DEFAULT_REGION": "us-east-1"}
    assert client("s3", env).meta.endpoint_url == "http://aws:4566"
    assert client("dynamodb", env).meta.endpoint_url == "http://dynamodb-local:8000"
    alone = lambda_environment(Settings(aws_endpoint_url="http://127.0.0.1:4566"), {})
    assert "AWS_ENDPOINT_URL_S3" not in alone and "ASSETS_BUCKET" not in alone
