"""The object store of recordings against a real S3 API server (moto in server mode): single and
multipart uploads checked by size and ETag, presigned URLs with ranges, deletion."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import pytest

from broadcaster.recordings.storage import MIN_PART, ObjectStore
from tests.support.s3 import MotoServer, moto_server  # noqa: F401


async def test_a_large_file_goes_up_in_parts_and_is_checked(moto_server: MotoServer,  # noqa: F811
                                                             tmp_path: Path) -> None:
    moto_server.client().create_bucket(Bucket="recs")
    store = ObjectStore.from_url("s3://recs/onair/", moto_server.url, part_size=MIN_PART)
    assert (store.bucket, store.prefix) == ("recs", "onair")
    big = tmp_path / "big.mp4"
    data = os.urandom(2 * MIN_PART + 12345)
    big.write_bytes(data)
    try:
        stored = await store.upload(big, store.key("b1", "recording.mp4"))
        assert stored.key == "onair/b1/recording.mp4" and stored.parts == 3 and stored.size == len(data)
        digests = b"".join(hashlib.md5(data[i:i + MIN_PART]).digest() for i in range(0, len(data), MIN_PART))
        assert stored.etag == f"{hashlib.md5(digests).hexdigest()}-3"
        small = tmp_path / "poster.jpg"
        small.write_bytes(b"\xff\xd8tiny\xff\xd9")
        single = await store.upload(small, store.key("b1", "poster.jpg"))
        assert single.parts == 1 and single.etag == hashlib.md5(small.read_bytes()).hexdigest()

        url = await store.presign(stored.key)
        request = urllib.request.Request(url, headers={"Range": "bytes=5-14"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 206 and resp.read() == data[5:15]
        # what the storage holds is checked: a size or ETag that does not match is an error
        with pytest.raises(Exception, match="bytes"):
            await store.verify(stored.key, len(data) + 1, stored.etag, 3)
        with pytest.raises(Exception, match="ETag"):
            await store.verify(stored.key, len(data), "0" * 32, 1)
        await store.delete(stored.key)
        keys = [o["Key"] for o in moto_server.client().list_objects_v2(Bucket="recs").get("Contents", [])]
        assert keys == ["onair/b1/poster.jpg"]
    finally:
        await store.close()


def test_bad_store_urls_and_part_sizes_are_refused() -> None:
    for url in ("http://bucket/x", "s3:///x", "bucket/prefix"):
        with pytest.raises(ValueError, match="s3://bucket/prefix"):
            ObjectStore.from_url(url)
    with pytest.raises(ValueError, match="part_size"):
        ObjectStore("b", part_size=1024)
