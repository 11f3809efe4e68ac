#!/usr/bin/env python3
"""MyMDB backups and S3, run on the host in a throw-away web container (boto3 from Debian).

  s3_backup.py put KEY NAME DATABASE REVISION CREATED_AT REASON < FILE
      Uploads the backup on stdin to s3://$MYMDB_BACKUP_BUCKET/KEY in one PUT, encrypted at rest
      (SSE-S3), with its SHA-256 (checked by S3 on arrival, kept as metadata `sha256`: restore
      checks the download against it) and the manifest's facts as object metadata (npm run
      backups -- --aws lists them). A key under kept/ is written once: an existing one is refused.
      Prints the new object version's id.
      Credentials: the host's (the instance role; keys in the environment where there is none),
      then, with MYMDB_BACKUP_ROLE_ARN, the backup role assumed with MYMDB_BACKUP_EXTERNAL_ID:
      the only identity that may write backups. The web service's own access never includes it.
  s3_backup.py get URL > FILE
      Downloads a presigned URL (made by the deployer for npm run restore -- --aws).

Exit codes: 0 done, 1 failed (the reason on stderr), 2 wrong arguments.
"""
import base64
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request

# One PUT carries an object of up to 5 GiB (S3's limit), and S3 checks its SHA-256 whole.
MAX_SIZE = 5 * 1024**3


def env(name):
    value = os.environ.get(name, "").strip()
    return value or None


def session():
    import boto3

    # The web service passes its upload keys even when they are empty: drop those, so that boto3
    # goes on to the instance role.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if name in os.environ and not os.environ[name].strip():
            del os.environ[name]
    region = env("MYMDB_BACKUP_REGION") or env("AWS_S3_REGION_NAME") or env("AWS_REGION") or env("AWS_DEFAULT_REGION")
    return boto3.session.Session(region_name=region), region, env("AWS_S3_ENDPOINT_URL")


def put(key, name, database, revision, created_at, reason):
    import boto3
    from botocore.exceptions import ClientError

    bucket = env("MYMDB_BACKUP_BUCKET")
    if not bucket:
        print("s3_backup: MYMDB_BACKUP_BUCKET is not set", file=sys.stderr)
        return 2
    base, region, endpoint = session()
    role = env("MYMDB_BACKUP_ROLE_ARN")
    if role:
        sts = base.client("sts", endpoint_url=endpoint)
        kwargs = {"RoleArn": role, "RoleSessionName": "mymdb-backup", "DurationSeconds": 3600}
        if env("MYMDB_BACKUP_EXTERNAL_ID"):
            kwargs["ExternalId"] = env("MYMDB_BACKUP_EXTERNAL_ID")
        creds = sts.assume_role(**kwargs)["Credentials"]
        base = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )
    s3 = base.client("s3", endpoint_url=endpoint)
    with tempfile.TemporaryFile() as body:
        digest = hashlib.sha256()
        size = 0
        while chunk := sys.stdin.buffer.read(1024 * 1024):
            digest.update(chunk)
            body.write(chunk)
            size += len(chunk)
            if size > MAX_SIZE:
                print("s3_backup: the backup is over 5 GiB, more than one upload carries", file=sys.stderr)
                return 1
        body.seek(0)
        once = {"IfNoneMatch": "*"} if key.startswith("kept/") else {}
        try:
            r = s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
                ServerSideEncryption="AES256",
                ContentType="application/x-tar",
                Metadata={
                    "name": name,
                    "sha256": digest.hexdigest(),
                    "database": database,
                    "revision": revision,
                    "created-at": created_at,
                    "reason": reason,
                },
                **once,
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "PreconditionFailed":
                print(f"s3_backup: s3://{bucket}/{key} exists already: a backup is written once, never replaced", file=sys.stderr)
                return 1
            raise
    print(f"uploaded s3://{bucket}/{key} ({size} bytes, sha256 {digest.hexdigest()})", file=sys.stderr)
    print(r.get("VersionId") or "")
    return 0


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, sys.stdout.buffer, 1024 * 1024)
    return 0


def main(argv):
    if len(argv) == 7 and argv[0] == "put":
        return put(*argv[1:])
    if len(argv) == 2 and argv[0] == "get":
        return get(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # one line, not a traceback: the deployer sees it over SSH
        print(f"s3_backup: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
