#!/usr/bin/env python3
"""A small boto3 command line for the tests and benchmarks: an S3 client we did not write.

    s3client.py --endpoint URL --bucket B list [PREFIX]          # one "key size" per line
    s3client.py --endpoint URL --bucket B get KEY DEST_FILE
    s3client.py --endpoint URL --bucket B sync PREFIX DEST_DIR   # download everything under PREFIX
    s3client.py --endpoint URL --bucket B put-dir SRC_DIR PREFIX [--threads N]   # prints MB/s

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def client(endpoint, threads):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=max(10, threads)),
    )


def keys(s3, bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"], obj["Size"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("command")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    s3 = client(a.endpoint, a.threads)
    if a.command == "list":
        for key, size in keys(s3, a.bucket, a.args[0] if a.args else ""):
            print(key, size)
    elif a.command == "get":
        s3.download_file(a.bucket, a.args[0], a.args[1])
    elif a.command == "sync":
        prefix, dest = a.args
        for key, _ in keys(s3, a.bucket, prefix):
            path = os.path.join(dest, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file(a.bucket, key, path)
    elif a.command == "put-dir":
        src, prefix = a.args
        files = []
        for root, _, names in os.walk(src):
            for n in names:
                full = os.path.join(root, n)
                files.append((full, prefix + "/" + os.path.relpath(full, src)))
        total = sum(os.path.getsize(f) for f, _ in files)

        def put(item):
            full, key = item
            with open(full, "rb") as f:
                s3.put_object(Bucket=a.bucket, Key=key, Body=f.read())

        start = time.monotonic()
        with ThreadPoolExecutor(a.threads) as pool:
            list(pool.map(put, files))
        secs = time.monotonic() - start
        print(f"files={len(files)} bytes={total} seconds={secs:.3f} mb_per_s={total / secs / 1e6:.2f}")
    else:
        sys.exit(f"unknown command {a.command}")


if __name__ == "__main__":
    main()
