#!/usr/bin/env python3
"""MyMDB backups and S3, run on the host in a throw-away web container (boto3 from Debian).

  s3_backup.py put KEY DATABASE REVISION CREATED_AT REASON < FILE
      Uploads the backup on stdin to s3://$MYMDB_BACKUP_BUCKET/KEY, encrypted at rest (SSE-S3),
      with the manifest's facts as object metadata (npm run backups -- --aws lists them).
      Credentials: the host's (the instance role; keys in the environment where there is none),
      then, with MYMDB_BACKUP_ROLE_ARN, the backup role assumed with MYMDB_BACKUP_EXTERNAL_ID:
      the only identity that may write backups. The web service's own access never includes it.
  s3_backup.py get URL > FILE
      Downloads a presigned URL (made by the deployer for npm run restore -- --aws).

Exit codes: 0 done, 1 failed (the reason on stderr), 2 wrong arguments.
"""
import os
import shutil
import sys
import urllib.request


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


def put(key, database, revision, created_at, reason):
    import boto3

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
    s3.upload_fileobj(
        sys.stdin.buffer,
        bucket,
        key,
        ExtraArgs={
            "ServerSideEncryption": "AES256",
            "ContentType": "application/x-tar",
            "Metadata": {"database": database, "revision": revision, "created-at": created_at, "reason": reason},
        },
    )
    print(f"uploaded s3://{bucket}/{key}")
    return 0


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, sys.stdout.buffer, 1024 * 1024)
    return 0


def main(argv):
    if len(argv) == 6 and argv[0] == "put":
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
