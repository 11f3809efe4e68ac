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
  s3_backup.py lock STAGE SECONDS
      Takes the stage's lock (the item STAGE of the DynamoDB table mymdb-locks, as npm run
      deploy:aws does) for SECONDS, as the backup role; prints its token (nothing when no lock
      table exists: no deploy ever locked). Exit 4 when a run of the deployer holds it.
  s3_backup.py unlock STAGE TOKEN
      Releases it, if it still holds TOKEN.
  s3_backup.py get URL > FILE
      Downloads a presigned URL (made by the deployer for npm run restore -- --aws).

Exit codes: 0 done, 1 failed (the reason on stderr), 2 wrong arguments, 4 the stage is locked.
"""
import base64
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import time
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


def backup_session():
    """The backup role's session (assumed with the external id), its region and the endpoint of an emulator."""
    import boto3

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
    return base, region, endpoint


def put(key, name, database, revision, created_at, reason):
    from botocore.exceptions import ClientError

    bucket = env("MYMDB_BACKUP_BUCKET")
    if not bucket:
        print("s3_backup: MYMDB_BACKUP_BUCKET is not set", file=sys.stderr)
        return 2
    base, region, endpoint = backup_session()
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


LOCK_TABLE = "mymdb-locks"


def lock_client():
    base, region, endpoint = backup_session()
    return base.client("dynamodb", endpoint_url=endpoint)


def lock(stage, seconds):
    """Takes the stage's lock (tasks/lib/lock.ts: an item of the table mymdb-locks) for SECONDS."""
    from botocore.exceptions import ClientError

    db = lock_client()
    now = int(time.time() * 1000)
    token = secrets.token_hex(16)
    item = {
        "stage": {"S": stage},
        "token": {"S": token},
        "by": {"S": f"the host of stage {stage}"},
        "command": {"S": "scheduled backup"},  # lock.ts SCHEDULED_BACKUP: a deploy waits for it
        "pid": {"N": str(os.getpid())},
        "since": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "expires": {"N": str(now + int(seconds) * 1000)},
    }
    try:
        db.put_item(
            TableName=LOCK_TABLE,
            Item=item,
            ConditionExpression="attribute_not_exists(#stage) OR #expires < :now",
            ExpressionAttributeNames={"#stage": "stage", "#expires": "expires"},
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":  # no deploy ever took a lock: nothing to hold
            print("")
            return 0
        if code == "ConditionalCheckFailedException":
            held = db.get_item(TableName=LOCK_TABLE, Key={"stage": {"S": stage}}, ConsistentRead=True).get("Item", {})
            who = held.get("by", {}).get("S", "?")
            what = held.get("command", {}).get("S", "?")
            print(f"s3_backup: stage {stage} is locked by {who} ({what})", file=sys.stderr)
            return 4
        raise
    print(token)
    return 0


def unlock(stage, token):
    from botocore.exceptions import ClientError

    if not token:
        return 0
    try:
        lock_client().delete_item(
            TableName=LOCK_TABLE,
            Key={"stage": {"S": stage}},
            ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":token": {"S": token}},
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
    return 0


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, sys.stdout.buffer, 1024 * 1024)
    return 0


def main(argv):
    if len(argv) == 7 and argv[0] == "put":
        return put(*argv[1:])
    if len(argv) == 3 and argv[0] == "lock":
        return lock(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "unlock":
        return unlock(argv[1], argv[2])
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
