"""Avatars end to end over the local stack: the final frontend's calls replayed through HTTP (its
key-upload request with its preflight, its PUT of the file to the signed URL with the bucket's
CORS preflight), the avatar Lambda fed by the bucket's notices through the queue, as the stack's
worker runs it, and the square JPEG fetched over HTTP from the stand-in for CloudFront. Then what
S3 refuses (another key, another type), what the processing refuses (no image, a bomb, too large),
and the newest upload winning however the notices come."""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from devstack import Stack, access_token, assets, free_port, start_api
from devstack.stack import start_stream_worker
from domain import avatars
from domain.avatars import AvatarRefused
from lib import aws
from lib.avatars import AvatarBucket
from lib.config import Settings
from lib.ddb import Ddb
from lib.images import square_jpeg
from tests import tables


def image(color, size=(300, 200), fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


class Site:
    def __init__(self, settings: Settings, api: str, cdn: str):
        self.settings, self.api, self.cdn, self.origin = settings, api, cdn, settings.frontend_url
        self.s3 = aws.client(settings, "s3")
        self.sqs = aws.client(settings, "sqs")
        self.queue = self.sqs.get_queue_url(QueueName=assets.QUEUE)["QueueUrl"]

    def key_upload(self, handle: str, body) -> requests.Response:
        """As ProfileForm's s3uploadkey calls it."""
        headers = {"Origin": self.origin, "Authorization": f"Bearer {access_token(self.settings, handle)}",
                   "Accept": "application/json", "Content-Type": "application/json"}
        preflight = requests.options(f"{self.api}/avatars/key_upload", timeout=10, headers={
            "Origin": self.origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "accept,authorization,content-type"})
        assert preflight.status_code == 200 and "POST" in preflight.headers["Access-Control-Allow-Methods"]
        return requests.post(f"{self.api}/avatars/key_upload", json=body, headers=headers, timeout=10)

    def put(self, url: str, data: bytes, content_type: str) -> requests.Response:
        """As ProfileForm's s3upload PUTs the file, from the frontend's origin."""
        preflight = requests.options(url, timeout=10, headers={
            "Origin": self.origin, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == self.origin
        return requests.put(url, data=data, headers={"Content-Type": content_type, "Origin": self.origin}, timeout=10)

    def owner(self, handle: str) -> str:
        return requests.get(f"{self.api}/api/activities/@{handle}", timeout=10).json()["profile"]["cognito_user_uuid"]

    def avatar(self, owner: str) -> requests.Response:
        return requests.get(f"{self.cdn}/avatars/{owner}.jpg", timeout=10)

    def settled(self) -> None:
        """Until the queue holds nothing, seen or unseen: every notice processed (or refused)."""
        def empty() -> bool:
            found = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            return all(v == "0" for v in found.values())
        wait_for(empty)


@pytest.fixture(scope="module")
def site(settings: Settings, tmp_path_factory):
    own = settings.with_(ddb_table=f"test-avatars-{os.getpid()}")  # the stream worker's own table
    tables.create_table(Ddb(own))
    stack = Stack()
    folder: Path = tmp_path_factory.mktemp("avatars")
    try:
        cdn = free_port()
        start_stream_worker(own, stack, folder / "checkpoint.json", log_file=folder / "worker.log", assets_port=cdn)
        api = start_api(settings.with_(frontend="final"), stack, free_port(), workers=1)
        yield Site(settings, api, f"http://127.0.0.1:{cdn}")
    finally:
        stack.stop()
        Ddb(own).delete_table()


def wait_for(condition, rounds: int = 400):
    for _ in range(rounds):
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("never happened")


def test_an_uploaded_photo_becomes_the_square_avatar_the_profile_shows(site):
    answer = site.key_upload("bayko", {"extension": "jpg"})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == site.origin
    url = answer.json()["url"]
    owner = site.owner("bayko")
    assert f"/{site.settings.assets_bucket}/{avatars.upload_key(owner)}?" in url
    put = site.put(url, image((10, 200, 10)), "image/jpeg")
    assert put.status_code == 200 and put.headers["Access-Control-Allow-Origin"] == site.origin
    got = wait_for(lambda: (r := site.avatar(owner)).status_code == 200 and r)
    assert got.headers["Content-Type"] == "image/jpeg" and got.headers["Cache-Control"] == "max-age=60"
    made = Image.open(io.BytesIO(got.content))
    assert made.format == "JPEG" and made.size == (avatars.AVATAR_SIDE, avatars.AVATAR_SIDE)
    assert made.convert("RGB").getpixel((256, 256))[1] > 150  # green, as uploaded


def test_s3_refuses_the_url_for_another_users_key_or_another_type_and_stores_nothing(site):
    url = site.key_upload("londo", {"extension": "png"}).json()["url"]
    londo, bayko = site.owner("londo"), site.owner("bayko")
    before = site.s3.list_objects_v2(Bucket=site.settings.assets_bucket, Prefix=avatars.upload_key(bayko))
    stolen = site.put(url.replace(avatars.upload_key(londo), avatars.upload_key(bayko)), image((1, 1, 1), fmt="PNG"),
                      "image/png")
    assert stolen.status_code == 403 and b"SignatureDoesNotMatch" in stolen.content
    wrong_type = site.put(url, b"<html>", "text/html")
    assert wrong_type.status_code == 403
    after = site.s3.list_objects_v2(Bucket=site.settings.assets_bucket, Prefix=avatars.upload_key(bayko))
    assert [o["ETag"] for o in after.get("Contents", [])] == [o["ETag"] for o in before.get("Contents", [])]
    with pytest.raises(site.s3.exceptions.ClientError):
        site.s3.head_object(Bucket=site.settings.assets_bucket, Key=avatars.upload_key(londo))


@pytest.mark.parametrize("body, code", [({"extension": "exe"}, "extension_invalid"), ({"extension": None}, "extension_invalid"),
                                        ({"extension": "jpg", "key": "avatars/someone.jpg"}, "field_unknown")])
def test_bad_key_upload_requests_are_a_clear_422(site, body, code):
    answer = site.key_upload("londo", body)
    assert answer.status_code == 422 and answer.json() == [code]
    assert answer.headers["Access-Control-Allow-Origin"] == site.origin


@pytest.mark.parametrize("upload", ["text", "bomb"])
def test_what_is_not_an_image_never_becomes_an_avatar(site, upload):
    data = b"just text, sent as a jpeg" if upload == "text" else _bomb()
    url = site.key_upload("andrewbrown", {"extension": "jpg" if upload == "text" else "png"}).json()["url"]
    owner = site.owner("andrewbrown")
    assert site.put(url, data, "image/jpeg" if upload == "text" else "image/png").status_code == 200
    site.settled()
    assert site.avatar(owner).status_code == 403  # none was written


def test_the_stand_in_for_cloudfront_serves_avatars_only(site):
    assert requests.get(f"{site.cdn}/uploads/avatars/x", timeout=10).status_code == 403
    assert requests.get(f"{site.cdn}/avatars/nobody.jpg", timeout=10).status_code == 403
    assert requests.post(f"{site.cdn}/avatars/nobody.jpg", timeout=10).status_code == 405


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000), 0).save(out, "PNG")
    return out.getvalue()


# -- the processing over the real S3 (moto) ---------------------------------------------------
@pytest.fixture
def bucket(settings: Settings) -> AvatarBucket:
    return AvatarBucket(aws.client(settings, "s3"), settings.assets_bucket)


def test_an_upload_larger_than_the_bound_is_refused_before_it_is_read(bucket):
    owner = "sub-too-large"
    bucket.s3.put_object(Bucket=bucket.bucket, Key=avatars.upload_key(owner), Body=b"\0" * (avatars.MAX_UPLOAD_BYTES + 1))
    with pytest.raises(AvatarRefused) as refused:
        bucket.process(avatars.upload_key(owner), lambda data: pytest.fail("read"))
    assert refused.value.code == "upload_too_large"
    with pytest.raises(bucket.s3.exceptions.ClientError):
        bucket.s3.head_object(Bucket=bucket.bucket, Key=avatars.avatar_key(owner))


def test_a_late_or_repeated_notice_writes_the_newest_upload_and_a_gone_one_nothing(bucket):
    owner = "sub-late"
    key = avatars.upload_key(owner)
    bucket.s3.put_object(Bucket=bucket.bucket, Key=key, Body=image((255, 0, 0)))
    bucket.s3.put_object(Bucket=bucket.bucket, Key=key, Body=image((0, 0, 255)))  # the newer upload
    for _ in range(2):  # the first upload's notice, late; then the second's
        assert bucket.process(key, square_jpeg) == avatars.avatar_key(owner)
        assert _colour(bucket, owner)[2] > 200
    assert bucket.process(avatars.upload_key("sub-never-uploaded"), square_jpeg) is None
    assert bucket.process("uploads/elsewhere/x", square_jpeg) is None


def test_an_upload_landing_while_an_older_one_is_processed_wins(bucket):
    owner = "sub-race"
    key = avatars.upload_key(owner)
    bucket.s3.put_object(Bucket=bucket.bucket, Key=key, Body=image((255, 0, 0)))
    rounds = []

    def make(data: bytes) -> bytes:
        rounds.append(data)
        if len(rounds) == 1:  # the newer upload lands while the older one is being made
            bucket.s3.put_object(Bucket=bucket.bucket, Key=key, Body=image((0, 0, 255)))
        return square_jpeg(data)

    bucket.process(key, make)
    assert len(rounds) == 2 and _colour(bucket, owner)[2] > 200


def _colour(bucket: AvatarBucket, owner: str):
    body = bucket.s3.get_object(Bucket=bucket.bucket, Key=avatars.avatar_key(owner))["Body"].read()
    return Image.open(io.BytesIO(body)).convert("RGB").getpixel((256, 256))
