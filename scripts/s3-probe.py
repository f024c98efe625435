#!/usr/bin/env python3
"""Probe which S3 features an endpoint supports, with exact status and error codes.

    eval "$(scripts/s3-servers start seaweedfs)"      # S3_* / AWS_* for the probe
    scripts/s3-servers python scripts/s3-probe.py > seaweedfs.json
    scripts/s3-servers python scripts/s3-probe.py --table seaweedfs.json moto.json   # markdown

Requests are built and SigV4-signed by hand (botocore's signer, `requests` transport) so every
header is under control; boto3 is used for its default (aws-chunked, CRC32 trailer) uploads and
to create IAM users on moto. Run it with the moto venv's python (`scripts/s3-servers python`).
Results go to stdout as JSON, progress to stderr. See scripts/s3-servers.md.
"""
import base64
import contextlib
import hashlib
import json
import os
import re
import sys
import time
import zlib
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlsplit

import requests
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MiB = 1024 * 1024


class Resp:
    def __init__(self, r):
        self.status, self.headers, self.body = r.status_code, r.headers, r.content
        self.code = None
        self.xml = None
        if self.body.lstrip().startswith(b"<"):
            try:
                root = ET.fromstring(self.body)
                for el in root.iter():  # strip namespaces
                    el.tag = el.tag.rsplit("}", 1)[-1]
                self.xml = root
                if root.tag == "Error":
                    self.code = root.findtext("Code")
            except ET.ParseError:
                pass

    def __str__(self):
        return f"{self.status} {self.code}" if self.code else str(self.status)

    def all(self, path):
        return [e.text or "" for e in self.xml.findall(path)] if self.xml is not None else []


class S3:
    def __init__(self, env):
        self.ep = env["S3_ENDPOINT"].rstrip("/")
        self.region = env.get("S3_REGION", "us-east-1")
        self.bucket = env["S3_BUCKET"]
        self.creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        ro = env.get("S3_READONLY_ACCESS_KEY_ID")
        self.ro_creds = Credentials(ro, env["S3_READONLY_SECRET_ACCESS_KEY"]) if ro else None
        self.http = requests.Session()

    def url(self, key="", bucket=None, vhost=False):
        bucket = self.bucket if bucket is None else bucket
        u = urlsplit(self.ep)
        if vhost:
            return f"{u.scheme}://{bucket}.localhost:{u.port}/{quote(key, safe='/~')}"
        return f"{self.ep}/{bucket}/{quote(key, safe='/~')}" if bucket else f"{self.ep}/"

    def __call__(self, method, key="", query=None, headers=None, body=b"", bucket=None,
                 creds=None, vhost=False, sign=True, payload_hash=None):
        url = self.url(key, bucket, vhost)
        if query:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in query.items())
        headers = dict(headers or {})
        req = AWSRequest(method=method, url=url, data=body, headers=headers)
        if payload_hash:
            req.headers["X-Amz-Content-SHA256"] = payload_hash
        if sign:
            S3SigV4Auth(creds or self.creds, "s3", self.region).add_auth(req)
        send_headers = dict(req.headers.items())
        send_url = url
        if vhost:  # connect to the endpoint, keep the virtual host in Host
            send_headers["Host"] = urlsplit(url).netloc
            send_url = url.replace(urlsplit(url).netloc, urlsplit(self.ep).netloc, 1)
        return Resp(self.http.request(method, send_url, headers=send_headers, data=body, allow_redirects=False))

    def presign(self, key, expires=300, creds=None):
        req = AWSRequest(method="GET", url=self.url(key))
        S3SigV4QueryAuth(creds or self.creds, "s3", self.region, expires=expires).add_auth(req)
        return req.url


def md5b64(b):
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def complete_xml(parts):
    inner = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
    return f"<CompleteMultipartUpload>{inner}</CompleteMultipartUpload>".encode()


@contextlib.contextmanager
def moto_iam_auth(s3):
    """moto checks signatures and IAM policies only after /moto-api/reset-auth: create an admin
    (s3:*) and a reader (s3:GetObject only) user, switch auth on, switch it off again after."""
    import boto3
    iam = boto3.client("iam", endpoint_url=s3.ep, region_name=s3.region,
                       aws_access_key_id=s3.creds.access_key, aws_secret_access_key=s3.creds.secret_key)
    creds = []
    for user, action in [(f"probe-admin-{time.time_ns()}", "s3:*"), (f"probe-reader-{time.time_ns()}", "s3:GetObject")]:
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        creds.append(Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
    requests.post(s3.ep + "/moto-api/reset-auth", data=b"0").raise_for_status()
    try:
        yield creds
    finally:
        requests.post(s3.ep + "/moto-api/reset-auth", data=b"inf").raise_for_status()


def run(s3):
    results = {}
    P = f"probe-{int(time.time() * 1000)}/"

    def rec(name, value):
        results[name] = value
        print(f"{name}: {value}", file=sys.stderr)

    def probe(name):
        def deco(fn):
            try:
                fn()
            except Exception as e:  # record, keep probing
                rec(name + " (probe error)", f"{type(e).__name__}: {e}")
            return fn
        return deco

    def put(key, body=b"x", headers=None):
        r = s3("PUT", key, headers=headers, body=body)
        assert r.status == 200, f"PUT {key}: {r}"
        return r.headers.get("ETag")

    def get_body(key):
        r = s3("GET", key)
        return r.body if r.status == 200 else str(r)

    def mpu(key, headers=None):
        r = s3("POST", key, query={"uploads": ""}, headers=headers)
        assert r.status == 200, f"CreateMultipartUpload: {r}"
        return r.xml.findtext("UploadId")

    def part(key, uid, n, body):
        r = s3("PUT", key, query={"partNumber": n, "uploadId": uid}, body=body)
        assert r.status == 200, f"UploadPart {n}: {r}"
        return r.headers["ETag"]

    def complete(key, uid, parts, headers=None):
        return s3("POST", key, query={"uploadId": uid}, body=complete_xml(parts), headers=headers)

    @probe("bucket")
    def _():
        rec("HeadBucket", str(s3("HEAD", bucket=s3.bucket)))
        rec("HeadBucket missing bucket", str(s3("HEAD", bucket="no-such-bucket-xyz")))
        rec("GetObject missing bucket", str(s3("GET", "k", bucket="no-such-bucket-xyz")))

    @probe("If-None-Match")
    def _():
        k = P + "inm"
        rec("PutObject If-None-Match:* (absent)", str(s3("PUT", k, headers={"If-None-Match": "*"}, body=b"first")))
        r = s3("PUT", k, headers={"If-None-Match": "*"}, body=b"second")
        rec("PutObject If-None-Match:* (exists)", f"{r}; body after: {get_body(k)!r}")
        etag = s3("HEAD", k).headers.get("ETag")
        rec("PutObject If-None-Match:<etag>", str(s3("PUT", k, headers={"If-None-Match": etag}, body=b"third")))

    @probe("If-Match")
    def _():
        k = P + "im"
        etag = put(k, b"one")
        r = s3("PUT", k, headers={"If-Match": '"0123456789abcdef0123456789abcdef"'}, body=b"two")
        rec("PutObject If-Match (mismatch)", f"{r}; body after: {get_body(k)!r}")
        r = s3("PUT", k, headers={"If-Match": etag}, body=b"three")
        rec("PutObject If-Match (match)", f"{r}; body after: {get_body(k)!r}")
        rec("PutObject If-Match (absent key)", str(s3("PUT", P + "im-absent", headers={"If-Match": etag}, body=b"x")))
        rec("PutObject If-Match:* (absent key)", str(s3("PUT", P + "im-absent2", headers={"If-Match": "*"}, body=b"x")))

    @probe("ranges")
    def _():
        k = P + "range"
        put(k, b"0123456789")
        for rng in ["bytes=0-4", "bytes=5-", "bytes=-3", "bytes=8-20", "bytes=10-20", "bytes=0-1,3-4", "bytes=4-2"]:
            r = s3("GET", k, headers={"Range": rng})
            cr = r.headers.get("Content-Range")
            body = r.body if r.status < 300 else b""
            rec(f"GetObject Range {rng}", f"{r}" + (f" Content-Range={cr}" if cr else "") + (f" body={body!r}" if body else ""))
        put(P + "empty", b"")
        rec("GetObject Range bytes=0-0 on empty object", str(s3("GET", P + "empty", headers={"Range": "bytes=0-0"})))
        rec("GetObject empty object", f"{s3('GET', P + 'empty')} len={s3('GET', P + 'empty').headers.get('Content-Length')}")

    @probe("head/get")
    def _():
        k = P + "head"
        put(k, b"hello", {"Content-Type": "text/plain", "x-amz-meta-foo": "bar"})
        r = s3("HEAD", k)
        rec("HeadObject", f"{r} " + " ".join(f"{h}={r.headers.get(h)}" for h in
                                             ["Content-Length", "ETag", "Content-Type", "Last-Modified", "x-amz-meta-foo", "Accept-Ranges"]))
        r = s3("HEAD", P + "missing")
        rec("HeadObject missing key", f"{r} body-len={len(r.body)}")
        rec("GetObject missing key", str(s3("GET", P + "missing")))
        r = s3("GET", k, headers={"If-None-Match": r.headers.get("ETag") or s3("HEAD", k).headers["ETag"]})
        rec("GetObject If-None-Match:<etag> (match)", str(r))
        rec("GetObject If-Match (mismatch)", str(s3("GET", k, headers={"If-Match": '"abc"'})))
        rec("PutObject Content-MD5 mismatch", str(s3("PUT", P + "md5", headers={"Content-MD5": md5b64(b"other")}, body=b"data")))
        rec("PutObject x-amz-content-sha256 mismatch", str(s3("PUT", P + "sha", body=b"data", payload_hash=hashlib.sha256(b"x").hexdigest())))
        r = s3("PUT", P + "unsigned", body=b"data", payload_hash="UNSIGNED-PAYLOAD")
        rec("PutObject x-amz-content-sha256: UNSIGNED-PAYLOAD", f"{r}; body {get_body(P + 'unsigned')!r}")
        crc = base64.b64encode(zlib.crc32(b"data").to_bytes(4, "big")).decode()
        r = s3("PUT", P + "crc", body=b"data", headers={"x-amz-checksum-crc32": crc})
        rec("PutObject x-amz-checksum-crc32 (correct)", f"{r} echo={r.headers.get('x-amz-checksum-crc32')}")
        r = s3("PUT", P + "crc2", body=b"data", headers={"x-amz-checksum-crc32": "AAAAAA=="})
        rec("PutObject x-amz-checksum-crc32 (wrong)", str(r))

    @probe("boto3")
    def _():
        import boto3
        from botocore.config import Config
        c = boto3.client("s3", endpoint_url=s3.ep, region_name=s3.region,
                         aws_access_key_id=s3.creds.access_key, aws_secret_access_key=s3.creds.secret_key,
                         config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        k = P + "boto3-default-checksum"
        c.put_object(Bucket=s3.bucket, Key=k, Body=b"payload-with-crc-trailer")  # aws-chunked + CRC32 trailer
        rec("boto3 PutObject (default aws-chunked CRC32 trailer)", f"ok; read back {get_body(k)!r}")
        uid = c.create_multipart_upload(Bucket=s3.bucket, Key=k + "-mpu")["UploadId"]
        e = c.upload_part(Bucket=s3.bucket, Key=k + "-mpu", UploadId=uid, PartNumber=1, Body=b"part")["ETag"]
        c.complete_multipart_upload(Bucket=s3.bucket, Key=k + "-mpu", UploadId=uid,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
        rec("boto3 UploadPart (default aws-chunked CRC32 trailer)", f"ok; read back {get_body(k + '-mpu')!r}")

    @probe("copy")
    def _():
        src = P + "copy-src"
        put(src, b"copy me", {"Content-Type": "text/x-src", "x-amz-meta-foo": "bar"})
        r = s3("PUT", P + "copy-dst", headers={"x-amz-copy-source": f"/{s3.bucket}/{src}"})
        h = s3("HEAD", P + "copy-dst").headers
        rec("CopyObject (default COPY directive)", f"{r} ETag-in-body={r.xml.findtext('ETag') if r.xml is not None else None} "
            f"dst meta foo={h.get('x-amz-meta-foo')} type={h.get('Content-Type')} body={get_body(P + 'copy-dst')!r}")
        r = s3("PUT", P + "copy-dst2", headers={"x-amz-copy-source": f"/{s3.bucket}/{src}", "x-amz-metadata-directive": "REPLACE",
                                                "x-amz-meta-new": "1", "Content-Type": "text/x-new"})
        h = s3("HEAD", P + "copy-dst2").headers
        rec("CopyObject REPLACE", f"{r} dst meta foo={h.get('x-amz-meta-foo')} new={h.get('x-amz-meta-new')} type={h.get('Content-Type')}")
        r = s3("PUT", src, headers={"x-amz-copy-source": f"/{s3.bucket}/{src}"})
        rec("CopyObject onto itself (COPY)", str(r))
        r = s3("PUT", src, headers={"x-amz-copy-source": f"/{s3.bucket}/{src}", "x-amz-metadata-directive": "REPLACE", "x-amz-meta-x": "y"})
        h = s3("HEAD", src).headers
        rec("CopyObject onto itself (REPLACE)", f"{r} meta x={h.get('x-amz-meta-x')} foo={h.get('x-amz-meta-foo')} body={get_body(src)!r}")
        rec("CopyObject missing source", str(s3("PUT", P + "copy-dst3", headers={"x-amz-copy-source": f"/{s3.bucket}/{P}nope"})))
        rec("CopyObject source without leading slash", str(s3("PUT", P + "copy-dst4", headers={"x-amz-copy-source": f"{s3.bucket}/{src}"})))
        r = s3("PUT", P + "copy-dst5", headers={"x-amz-copy-source": f"/{s3.bucket}/{src}", "If-None-Match": "*"})
        rec("CopyObject If-None-Match:* (absent dst)", str(r))
        r = s3("PUT", P + "copy-dst5", headers={"x-amz-copy-source": f"/{s3.bucket}/{src}", "If-None-Match": "*"})
        rec("CopyObject If-None-Match:* (existing dst)", str(r))

    @probe("multipart")
    def _():
        a, b, c = b"a" * (5 * MiB), b"b" * (5 * MiB), b"c" * 1024
        k = P + "mpu-subset"
        uid = mpu(k)
        rec("CreateMultipartUpload", "200")
        e1, e2, e3 = part(k, uid, 1, a), part(k, uid, 2, b), part(k, uid, 3, c)
        rec("UploadPart ETag", e1)
        r = s3("GET", k, query={"uploadId": uid})
        rec("ListParts", f"{r} parts={r.all('Part/PartNumber')} sizes={r.all('Part/Size')}")
        r = s3("GET", k, query={"uploadId": uid, "max-parts": 2})
        rec("ListParts max-parts=2", f"{r} parts={r.all('Part/PartNumber')} IsTruncated={r.all('IsTruncated')} "
            f"NextPartNumberMarker={r.all('NextPartNumberMarker')}")
        r2 = s3("GET", k, query={"uploadId": uid, "part-number-marker": 2})
        rec("ListParts part-number-marker=2", f"{r2} parts={r2.all('Part/PartNumber')}")
        r = s3("GET", "", query={"uploads": "", "prefix": P + "mpu-"})
        rec("ListMultipartUploads prefix", f"{r} keys={r.all('Upload/Key')} ids-match={uid in r.all('Upload/UploadId')}")
        r = s3("GET", "", query={"uploads": "", "prefix": P, "delimiter": "/"})
        rec("ListMultipartUploads prefix+delimiter", f"{r} keys={r.all('Upload/Key')} prefixes={r.all('CommonPrefixes/Prefix')}")
        r = s3("GET", "", query={"list-type": 2, "prefix": P + "mpu-"})
        rec("ListObjectsV2 during multipart upload", f"{r} keys={r.all('Contents/Key')}")
        rec("GetObject of in-progress multipart key", str(s3("HEAD", k)))
        rec("CompleteMultipartUpload wrong part ETag", str(complete(k, uid, [(1, e1), (3, '"00000000000000000000000000000000"')])))
        rec("CompleteMultipartUpload parts out of order", str(complete(k, uid, [(3, e3), (1, e1)])))
        r = complete(k, uid, [(1, e1), (3, e3)])
        got = get_body(k)
        rec("CompleteMultipartUpload subset (parts 1,3)", f"{r} ETag={r.xml.findtext('ETag') if r.xml is not None else None} "
            f"size={len(got)} content-ok={got == a + c}")
        etag = s3("HEAD", k).headers.get("ETag")
        want = '"' + hashlib.md5(hashlib.md5(a).digest() + hashlib.md5(c).digest()).hexdigest() + '-2"'
        rec("multipart ETag format", f"{etag} (md5-of-part-md5s-N: {etag == want})")
        rec("CompleteMultipartUpload again (same uploadId)", str(complete(k, uid, [(1, e1), (3, e3)])))
        rec("ListParts after complete", str(s3("GET", k, query={"uploadId": uid})))
        r = s3("GET", k, query={"partNumber": 1})
        rec("GetObject partNumber=1", f"{r} len={r.headers.get('Content-Length')} parts-count={r.headers.get('x-amz-mp-parts-count')}")

        k = P + "mpu-small"
        uid = mpu(k)
        e1, e2 = part(k, uid, 1, b"x" * 1024), part(k, uid, 2, b"y" * 1024)
        r = complete(k, uid, [(1, e1), (2, e2)])
        rec("CompleteMultipartUpload with 1 KiB non-last part", f"{r}; object size={len(get_body(k)) if r.status == 200 else '-'}")

        k = P + "mpu-abort"
        uid = mpu(k)
        part(k, uid, 1, b"z")
        rec("AbortMultipartUpload", str(s3("DELETE", k, query={"uploadId": uid})))
        rec("ListParts after abort", str(s3("GET", k, query={"uploadId": uid})))
        rec("UploadPart after abort", str(s3("PUT", k, query={"partNumber": 2, "uploadId": uid}, body=b"z")))
        rec("AbortMultipartUpload again", str(s3("DELETE", k, query={"uploadId": uid})))
        rec("UploadPart unknown uploadId", str(s3("PUT", k, query={"partNumber": 1, "uploadId": "bogus"}, body=b"z")))
        rec("UploadPart partNumber=0", str(s3("PUT", k, query={"partNumber": 0, "uploadId": mpu(k)}, body=b"z")))
        rec("UploadPart partNumber=10001", str(s3("PUT", k, query={"partNumber": 10001, "uploadId": mpu(k)}, body=b"z")))

        k = P + "mpu-inm"
        put(k, b"existing")
        uid = mpu(k)
        e1 = part(k, uid, 1, b"new")
        r = complete(k, uid, [(1, e1)], {"If-None-Match": "*"})
        rec("CompleteMultipartUpload If-None-Match:* (key exists)", f"{r}; body after {get_body(k)!r}")
        r = s3("GET", k, query={"uploadId": uid})
        rec("ListParts after failed conditional complete", f"{r} parts={r.all('Part/PartNumber')}")
        k2 = P + "mpu-inm-new"
        uid = mpu(k2)
        e1 = part(k2, uid, 1, b"new")
        rec("CompleteMultipartUpload If-None-Match:* (absent)", f"{complete(k2, uid, [(1, e1)], {'If-None-Match': '*'})}; body {get_body(k2)!r}")

        src = P + "mpu-copy-src"
        data = bytes(range(256)) * (6 * MiB // 256)
        put(src, data)
        k = P + "mpu-copy"
        uid = mpu(k)
        hdr = {"x-amz-copy-source": f"/{s3.bucket}/{src}"}
        r1 = s3("PUT", k, query={"partNumber": 1, "uploadId": uid}, headers={**hdr, "x-amz-copy-source-range": f"bytes=0-{5 * MiB - 1}"})
        r2 = s3("PUT", k, query={"partNumber": 2, "uploadId": uid}, headers={**hdr, "x-amz-copy-source-range": f"bytes={5 * MiB}-{6 * MiB - 1}"})
        rec("UploadPartCopy with x-amz-copy-source-range", f"{r1}/{r2} ETag-in-body={r1.xml.findtext('ETag') if r1.xml is not None else None}")
        r = complete(k, uid, [(1, r1.xml.findtext("ETag")), (2, r2.xml.findtext("ETag"))])
        got = get_body(k)
        rec("Complete after UploadPartCopy ranges", f"{r} content-ok={got == data}")
        uid = mpu(k + "2")
        r = s3("PUT", k + "2", query={"partNumber": 1, "uploadId": uid}, headers=hdr)
        rec("UploadPartCopy without range (whole object)", str(r))
        r = s3("PUT", k + "2", query={"partNumber": 2, "uploadId": uid}, headers={**hdr, "x-amz-copy-source-range": f"bytes=0-{7 * MiB}"})
        rec("UploadPartCopy range beyond source size", str(r))
        r = s3("PUT", k + "2", query={"partNumber": 3, "uploadId": uid}, headers={**hdr, "x-amz-copy-source-range": "bytes=0-9"})
        rec("UploadPartCopy 10-byte range", str(r))
        s3("DELETE", k + "2", query={"uploadId": uid})

    @probe("list")
    def _():
        L = P + "l/"
        keys = [L + x for x in ["a", "b/1", "b/2", "c/x/y", "d"]]
        for key in keys:
            put(key)
        r = s3("GET", "", query={"list-type": 2, "prefix": L, "delimiter": "/"})
        rec("ListObjectsV2 prefix+delimiter", f"{r} keys={[k[len(P):] for k in r.all('Contents/Key')]} "
            f"prefixes={[k[len(P):] for k in r.all('CommonPrefixes/Prefix')]} KeyCount={r.all('KeyCount')}")
        r = s3("GET", "", query={"list-type": 2, "prefix": L + "b", "delimiter": "/"})
        rec("ListObjectsV2 prefix without trailing slash", f"keys={r.all('Contents/Key')} prefixes={[k[len(P):] for k in r.all('CommonPrefixes/Prefix')]}")
        pages, token, seen = 0, None, []
        while True:
            q = {"list-type": 2, "prefix": L, "max-keys": 2}
            if token:
                q["continuation-token"] = token
            r = s3("GET", "", query=q)
            pages += 1
            seen += [k[len(P):] for k in r.all("Contents/Key")]
            token = r.xml.findtext("NextContinuationToken")
            if r.xml.findtext("IsTruncated") != "true" or pages > 10:
                break
        rec("ListObjectsV2 max-keys=2 pagination", f"pages={pages} keys={seen} complete={seen == [k[len(P):] for k in keys]}")
        pages, token, seen = 0, None, []
        while True:
            q = {"list-type": 2, "prefix": L, "delimiter": "/", "max-keys": 1}
            if token:
                q["continuation-token"] = token
            r = s3("GET", "", query=q)
            pages += 1
            seen += [k[len(P):] for k in r.all("Contents/Key") + r.all("CommonPrefixes/Prefix")]
            token = r.xml.findtext("NextContinuationToken")
            if r.xml.findtext("IsTruncated") != "true" or pages > 10:
                break
        rec("ListObjectsV2 delimiter max-keys=1 pagination", f"pages={pages} entries={seen}")
        r = s3("GET", "", query={"list-type": 2, "prefix": L, "start-after": L + "b/1"})
        rec("ListObjectsV2 start-after", f"keys={[k[len(P):] for k in r.all('Contents/Key')]}")
        r = s3("GET", "", query={"list-type": 2, "prefix": L + "a"})
        rec("ListObjectsV2 entry fields", f"ETag={r.all('Contents/ETag')} Size={r.all('Contents/Size')} "
            f"LastModified={r.all('Contents/LastModified')} StorageClass={r.all('Contents/StorageClass')}")
        r = s3("GET", "", query={"list-type": 2, "prefix": L + "zzz"})
        rec("ListObjectsV2 no matches", f"{r} KeyCount={r.all('KeyCount')}")
        r = s3("GET", "", query={"prefix": L, "delimiter": "/", "max-keys": 2})
        rec("ListObjects (v1) prefix+delimiter max-keys=2", f"{r} keys={[k[len(P):] for k in r.all('Contents/Key')]} "
            f"prefixes={[k[len(P):] for k in r.all('CommonPrefixes/Prefix')]} NextMarker={r.all('NextMarker')}")
        # empty "directories" after deletes
        s3("DELETE", L + "b/1")
        s3("DELETE", L + "b/2")
        r = s3("GET", "", query={"list-type": 2, "prefix": L, "delimiter": "/"})
        rec("ListObjectsV2 after deleting all keys under b/", f"prefixes={[k[len(P):] for k in r.all('CommonPrefixes/Prefix')]}")

    @probe("delete")
    def _():
        put(P + "del/1")
        put(P + "del/2")
        body = (f"<Delete><Object><Key>{P}del/1</Key></Object><Object><Key>{P}del/2</Key></Object>"
                f"<Object><Key>{P}del/missing</Key></Object></Delete>").encode()
        r = s3("POST", "", query={"delete": ""}, body=body, headers={"Content-MD5": md5b64(body)})
        rec("DeleteObjects (2 present + 1 missing)", f"{r} Deleted={[k[len(P):] for k in r.all('Deleted/Key')]} Errors={r.all('Error/Code')} "
            f"gone={s3('HEAD', P + 'del/1').status}")
        put(P + "del/3")
        body = f"<Delete><Quiet>true</Quiet><Object><Key>{P}del/3</Key></Object></Delete>".encode()
        r = s3("POST", "", query={"delete": ""}, body=body, headers={"Content-MD5": md5b64(body)})
        rec("DeleteObjects Quiet", f"{r} Deleted={r.all('Deleted/Key')} gone={s3('HEAD', P + 'del/3').status}")
        put(P + "del/4")
        body = f"<Delete><Object><Key>{P}del/4</Key></Object></Delete>".encode()
        r = s3("POST", "", query={"delete": ""}, body=body)
        rec("DeleteObjects without Content-MD5", f"{r} gone={s3('HEAD', P + 'del/4').status}")
        rec("DeleteObject missing key", str(s3("DELETE", P + "del/missing")))

    @probe("presign")
    def _():
        k = P + "presigned"
        put(k, b"signed")
        r = s3.http.get(s3.presign(k))
        rec("presigned GET (SigV4 query)", f"{r.status_code} body={r.content!r}")
        r = Resp(s3.http.get(s3.presign(k).replace("X-Amz-Signature=", "X-Amz-Signature=0")))
        rec("presigned GET tampered signature", str(r))
        url = s3.presign(k, expires=1)
        time.sleep(2)
        rec("presigned GET expired", str(Resp(s3.http.get(url))))

    @probe("vhost")
    def _():
        k = P + "vhost"
        put(k, b"vh")
        r = s3("GET", k, vhost=True)
        rec("virtual-hosted-style GET (Host: <bucket>.localhost:port)", f"{r} body={r.body[:40]!r}")
        r = s3("PUT", P + "vhost-put", vhost=True, body=b"vput")
        rec("virtual-hosted-style PUT", f"{r}; path-style read back {get_body(P + 'vhost-put')!r}")

    def auth_probes(admin, ro, label):
        k = P + "auth"
        if label:
            rec(label + "wrong secret key", str(s3("GET", k, creds=Credentials(admin.access_key, "wrong-secret-key-000000000"))))
            rec(label + "admin GET missing key", str(s3("GET", P + "missing", creds=admin)))
            r = Resp(s3.http.get(s3.presign(k, creds=admin).replace("X-Amz-Signature=", "X-Amz-Signature=0")))
            rec(label + "presigned GET tampered signature", str(r))
        rec(label + "read-only identity (no List): GET existing", str(s3("GET", k, creds=ro)))
        rec(label + "read-only identity (no List): GET missing key", str(s3("GET", P + "missing", creds=ro)))
        rec(label + "read-only identity (no List): HEAD missing key", str(s3("HEAD", P + "missing", creds=ro)))
        rec(label + "read-only identity (no List): ListObjectsV2", str(s3("GET", "", query={"list-type": 2}, creds=ro)))
        rec(label + "read-only identity (no List): PUT", str(s3("PUT", P + "ro-put", creds=ro, body=b"x")))

    @probe("auth")
    def _():
        k = P + "auth"
        put(k)
        rec("wrong secret key", str(s3("GET", k, creds=Credentials(s3.creds.access_key, "wrong-secret-key-000000000"))))
        rec("unknown access key", str(s3("GET", k, creds=Credentials("AKIAUNKNOWNKEY000000", "x" * 40))))
        rec("anonymous GET", str(s3("GET", k, sign=False)))
        if s3.ro_creds is None and os.environ.get("S3_SERVER") == "moto":
            with moto_iam_auth(s3) as (admin, ro):
                auth_probes(admin, ro, "moto IAM auth on: ")
        elif s3.ro_creds:
            auth_probes(s3.creds, s3.ro_creds, "")

    @probe("headers")
    def _():
        for sc in ["STANDARD", "STANDARD_IA", "REDUCED_REDUNDANCY", "GLACIER", "BOGUS"]:
            r = s3("PUT", P + "sc-" + sc, headers={"x-amz-storage-class": sc}, body=b"x")
            h = s3("HEAD", P + "sc-" + sc).headers if r.status == 200 else {}
            rec(f"PutObject x-amz-storage-class: {sc}", f"{r} HEAD x-amz-storage-class={h.get('x-amz-storage-class')}")
        for sse in ["AES256", "aws:kms", "bogus"]:
            r = s3("PUT", P + "sse", headers={"x-amz-server-side-encryption": sse}, body=b"x")
            h = s3("HEAD", P + "sse").headers if r.status == 200 else {}
            rec(f"PutObject x-amz-server-side-encryption: {sse}",
                f"{r} resp-header={r.headers.get('x-amz-server-side-encryption')} HEAD={h.get('x-amz-server-side-encryption')}")
        for acl in ["private", "public-read", "bucket-owner-full-control", "bogus"]:
            rec(f"PutObject x-amz-acl: {acl}", str(s3("PUT", P + "acl", headers={"x-amz-acl": acl}, body=b"x")))
        uid = s3("POST", P + "mpu-hdr", query={"uploads": ""},
                 headers={"x-amz-storage-class": "STANDARD", "x-amz-acl": "private", "x-amz-server-side-encryption": "AES256"})
        rec("CreateMultipartUpload with storage-class+acl+sse headers", str(uid))

    @probe("keys")
    def _():
        put(P + "k/x", b"file")
        rec("PUT a/b when a is an object", str(s3("PUT", P + "k/x/y", body=b"nested")))
        rec("GET a after PUT a/b", repr(get_body(P + "k/x")))
        put(P + "k/z/w", b"nested")
        rec("PUT a when a/b exists", f"{s3('PUT', P + 'k/z', body=b'file')}; GET a={get_body(P + 'k/z')!r} GET a/b={get_body(P + 'k/z/w')!r}")
        r = s3("HEAD", P + "k/z/")
        rec("HEAD of implicit directory (a/ with a/b present)", f"{r} Content-Type={r.headers.get('Content-Type')} ETag={r.headers.get('ETag')}")
        put(P + "k/z-dir/f")
        rec("HEAD of implicit directory without slash (a with a/b present)", str(s3("HEAD", P + "k/z-dir")))
        for name in ["sp ace", "plus+sign", "colon:x", "eq=x", "tilde~", "unicodé", "pct%41"]:
            k = P + "k/" + name
            r = s3("PUT", k, body=name.encode())
            lst = s3("GET", "", query={"list-type": 2, "prefix": k})
            rec(f"key {name!r} round-trip", f"{r} get-ok={get_body(k) == name.encode()} listed={lst.all('Contents/Key') == [k]}")
        r = s3("PUT", P + "k/trailing/", body=b"")
        rec("PUT key with trailing slash (0 bytes)", f"{r} HEAD={s3('HEAD', P + 'k/trailing/')}")
        r = s3("PUT", P + "k//double", body=b"d")
        lst = s3("GET", "", query={"list-type": 2, "prefix": P + "k/"})
        rec("PUT key with double slash", f"{r} GET={get_body(P + 'k//double')!r} listed-as={[k[len(P):] for k in lst.all('Contents/Key') if 'double' in k]}")
        put(P + "big", b"q" * (20 * MiB))
        rec("PutObject 20 MiB single request", f"ok size={s3('HEAD', P + 'big').headers.get('Content-Length')}")

    return results


def table(files):
    cols = [(os.path.splitext(os.path.basename(f))[0], json.load(open(f))) for f in files]
    rows = []
    for _, res in cols:
        rows += [k for k in res if k not in rows]
    out = ["| probe | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in rows:
        cells = [re.sub(r"(probe|dir)-\d+/", "", str(res.get(row, "—"))).replace("|", "\\|") for _, res in cols]
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        table(sys.argv[2:])
    else:
        json.dump(run(S3(os.environ)), sys.stdout, indent=1)
        print()
