"""Provision an AWS endpoint (moto, LocalStack) from ``infra/template.yaml`` (read by ``template.py``).

The executor half of provisioning: ``plan.py`` decides, this creates. moto's CloudFormation
silently drops bucket notifications, queue policies and more (``docs/local-cloud.md``), so the
local cloud reads the template itself (``template.py`` resolves parameters, conditions and the
intrinsic functions; ``plan.py`` orders the resources) and this creates each resource from its
own properties with boto3. Same names, visibility timeouts, redrive policies, CORS rules and
notifications as a real deployment. Re-running against an endpoint
that already has the resources is harmless.

Supported types: SQS queues and queue policies, S3 buckets (public access block, CORS,
queue notifications) and bucket policies, SNS subscriptions, CloudWatch alarms, DynamoDB tables (GSIs, TTL), SNS topics, log groups, ECS clusters and
task definitions, Cognito user pools and app clients. What the local cloud plays itself (IAM
roles, the ECS service and its scaling, CloudFront, the network) gets a placeholder id shaped
like AWS's (``plan.PLAYED_LOCALLY``).
"""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra.local.cloudformation.plan import CREATE, PLAY, ProvisioningPlan, plan_stack
from infra.local.cloudformation.template import Stack, load_template

#: CloudFormation CorsRule property -> S3 API CORSRule member.
CORS_KEYS = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}


def _placeholder(kind: str, logical: str, account: str, region: str, props: dict) -> tuple[str, dict[str, str]]:
    """(Ref, attributes) of a resource the local cloud plays itself, shaped like AWS's."""
    if kind == "AWS::IAM::Role":
        arn = f"arn:aws:iam::{account}:role/{logical}"
        return arn, {"Arn": arn}
    ident = f"local-{logical.lower()}"
    name = props.get("ServiceName") if isinstance(props.get("ServiceName"), str) else logical
    return ident, {"Arn": f"arn:aws:local:{region}:{account}:{logical}", "Id": ident, "Name": name,
                   "DomainName": f"{ident}.invalid", "RepositoryUri": f"{account}.dkr.ecr.{region}.invalid/{ident}"}


def _ignore(code: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in code.split("|"):
            raise
        return None


def _camel(value: Any) -> Any:
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if isinstance(value, dict):
        return {(k[0].lower() + k[1:] if k[:1].isupper() else k): (v if k == "Options" else _camel(v))
                for k, v in value.items()}
    return value


def lifecycle_rule(rule: dict) -> dict:
    """A CloudFormation ``AWS::S3::Bucket`` lifecycle rule as the S3 API spells it."""
    tags = rule.get("TagFilters") or []
    if len(tags) == 1 and not rule.get("Prefix"):
        selector = {"Tag": {"Key": tags[0]["Key"], "Value": tags[0]["Value"]}}
    elif tags:
        selector = {"And": {"Prefix": rule.get("Prefix", ""), "Tags": [{"Key": t["Key"], "Value": t["Value"]} for t in tags]}}
    else:
        selector = {"Prefix": rule.get("Prefix", "")}
    out = {"ID": rule.get("Id", "rule"), "Status": rule["Status"], "Filter": selector}
    if "Transitions" in rule:
        out["Transitions"] = [{"Days": int(t.get("TransitionInDays", 0)), "StorageClass": t["StorageClass"]}
                              for t in rule["Transitions"]]
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return out


class Provisioner:
    """Creates a ``Stack``'s resources through a boto3 ``session`` pointed at an endpoint."""

    def __init__(self, session, endpoint_url: str | None, region: str):
        self.session, self.endpoint, self.region = session, endpoint_url, region

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint, region_name=self.region)

    def handler(self, kind: str):
        """The method creating resources of ``kind`` (``AWS::SQS::Queue`` -> ``_sqs_queue``), or None."""
        return getattr(self, "_" + kind.replace("AWS::", "").replace("::", "_").lower(), None)

    def creatable(self, template: dict) -> set[str]:
        """The resource types of ``template`` this provisioner creates."""
        return {r["Type"] for r in template["Resources"].values() if self.handler(r["Type"])}

    def plan(self, params: dict[str, Any] | None = None, template: dict | None = None) -> ProvisioningPlan:
        """The plan for ``template`` (default ``infra/template.yaml``) in this endpoint's
        account (``sts:GetCallerIdentity``)."""
        template = template or load_template()
        account = self.client("sts").get_caller_identity()["Account"]
        return plan_stack(template, params, self.region, account, self.creatable(template))

    def execute(self, plan: ProvisioningPlan) -> Stack:
        """Carry out ``plan`` step by step; returns its stack with every physical id and
        attribute. Raises ``NotImplementedError`` for a plan with unsupported steps (before
        creating anything), ``botocore`` errors from the endpoint."""
        if plan.unsupported:
            raise NotImplementedError("the local provisioner cannot create "
                                      + ", ".join(f"{s.type} ({s.logical})" for s in plan.unsupported))
        stack = plan.stack
        for step in plan.steps:
            props = stack.template["Resources"][step.logical].get("Properties", {})
            if step.action == PLAY:
                stack.refs[step.logical], stack.attrs[step.logical] = _placeholder(step.type, step.logical,
                                                                                   stack.account, self.region, props)
            elif step.action == CREATE:
                self.handler(step.type)(stack, step.logical, stack.resolve(props))
        return stack

    def provision(self, params: dict[str, Any] | None = None, template: dict | None = None) -> Stack:
        """Plan and execute ``template`` (default ``infra/template.yaml``); returns the
        resolved stack."""
        return self.execute(self.plan(params, template))

    # --- resource types ---------------------------------------------------------------
    def _sqs_queue(self, stack: Stack, logical: str, p: dict) -> None:
        sqs = self.client("sqs")
        attrs = {k: str(p[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
                                        "DelaySeconds", "MaximumMessageSize") if k in p}
        if "RedrivePolicy" in p:
            attrs["RedrivePolicy"] = json.dumps({k: str(v) if k == "maxReceiveCount" else v
                                                 for k, v in p["RedrivePolicy"].items()})
        name = p.get("QueueName") or logical
        try:
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        except sqs.exceptions.QueueNameExists:  # kept with other attributes: updated below, messages kept
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs) if attrs else None
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stack.refs[logical] = url
        stack.attrs[logical] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _sqs_queuepolicy(self, stack: Stack, logical: str, p: dict) -> None:
        sqs = self.client("sqs")
        for url in p["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])})
        stack.refs[logical] = logical

    def _s3_bucket(self, stack: Stack, logical: str, p: dict) -> None:
        s3 = self.client("s3")
        name = p["BucketName"]
        kwargs = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        _ignore("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket=name, **kwargs)
        if "PublicAccessBlockConfiguration" in p:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
        if "CorsConfiguration" in p:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
                {CORS_KEYS.get(k, k): v for k, v in r.items()} for r in p["CorsConfiguration"]["CorsRules"]]})
        if "VersioningConfiguration" in p:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": p["VersioningConfiguration"]["Status"]})
        if "LifecycleConfiguration" in p:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
                lifecycle_rule(r) for r in p["LifecycleConfiguration"]["Rules"]]})
        notif = p.get("NotificationConfiguration") or {}
        if notif.get("QueueConfigurations"):
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"QueueConfigurations": [
                {"QueueArn": q["Queue"], "Events": [q["Event"]], **({"Filter": q["Filter"]} if "Filter" in q else {})}
                for q in notif["QueueConfigurations"]]})
        stack.refs[logical] = name
        stack.attrs[logical] = {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                                "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com"}

    def _s3_bucketpolicy(self, stack: Stack, logical: str, p: dict) -> None:
        self.client("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"]))
        stack.refs[logical] = p["Bucket"]

    def _dynamodb_table(self, stack: Stack, logical: str, p: dict) -> None:
        ddb = self.client("dynamodb")
        name = p["TableName"]
        kwargs = {"TableName": name, "AttributeDefinitions": p["AttributeDefinitions"], "KeySchema": p["KeySchema"],
                  "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST")}
        if p.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
        _ignore("ResourceInUseException", ddb.create_table, **kwargs)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            _ignore("ValidationException", ddb.update_time_to_live, TableName=name, TimeToLiveSpecification=ttl)
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        stack.refs[logical] = name
        stack.attrs[logical] = {"Arn": arn}

    def _sns_topic(self, stack: Stack, logical: str, p: dict) -> None:
        arn = self.client("sns").create_topic(Name=p["TopicName"])["TopicArn"]
        stack.refs[logical] = arn
        stack.attrs[logical] = {"TopicArn": arn, "TopicName": p["TopicName"]}

    def _sns_subscription(self, stack: Stack, logical: str, p: dict) -> None:
        attrs = {}
        if "RawMessageDelivery" in p:
            attrs["RawMessageDelivery"] = str(p["RawMessageDelivery"]).lower()
        if "FilterPolicy" in p:
            attrs["FilterPolicy"] = json.dumps(p["FilterPolicy"])
        arn = self.client("sns").subscribe(TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"],
                                           Attributes=attrs, ReturnSubscriptionArn=True)["SubscriptionArn"]
        stack.refs[logical] = arn

    def _cloudwatch_alarm(self, stack: Stack, logical: str, p: dict) -> None:
        keys = ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic",
                "ExtendedStatistic", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions", "InsufficientDataActions",
                "Unit", "Metrics")
        kwargs = {k: p[k] for k in keys if k in p}
        for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if k in kwargs:
                kwargs[k] = int(kwargs[k])
        for query in kwargs.get("Metrics", []):
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        kwargs["Threshold"] = float(kwargs["Threshold"])
        cloudwatch = self.client("cloudwatch")
        kept = (cloudwatch.describe_alarms(AlarmNames=[p["AlarmName"]]).get("MetricAlarms") or [None])[0]
        cloudwatch.put_metric_alarm(**kwargs)
        if kept:  # AWS: "When you update an existing alarm, its state is left unchanged" (moto resets it)
            cloudwatch.set_alarm_state(AlarmName=p["AlarmName"], StateValue=kept["StateValue"],
                                       StateReason=kept.get("StateReason") or "kept across an update")
        stack.refs[logical] = p["AlarmName"]
        stack.attrs[logical] = {"Arn": f"arn:aws:cloudwatch:{self.region}:{stack.account}:alarm:{p['AlarmName']}"}

    def _logs_loggroup(self, stack: Stack, logical: str, p: dict) -> None:
        logs = self.client("logs")
        _ignore("ResourceAlreadyExistsException", logs.create_log_group, logGroupName=p["LogGroupName"])
        if "RetentionInDays" in p:
            logs.put_retention_policy(logGroupName=p["LogGroupName"], retentionInDays=int(p["RetentionInDays"]))
        stack.refs[logical] = p["LogGroupName"]
        stack.attrs[logical] = {"Arn": f"arn:aws:logs:{self.region}:{stack.account}:log-group:{p['LogGroupName']}:*"}

    def _ecs_cluster(self, stack: Stack, logical: str, p: dict) -> None:
        arn = self.client("ecs").create_cluster(clusterName=p["ClusterName"])["cluster"]["clusterArn"]
        stack.refs[logical] = p["ClusterName"]
        stack.attrs[logical] = {"Arn": arn}

    def _ecs_taskdefinition(self, stack: Stack, logical: str, p: dict) -> None:
        containers = _camel(p["ContainerDefinitions"])  # (Options maps keep their keys)
        for c in containers:
            for e in c.get("environment", []):
                e["value"] = str(e["value"])
        res = self.client("ecs").register_task_definition(
            family=p["Family"], containerDefinitions=containers, networkMode=p.get("NetworkMode", "awsvpc"),
            requiresCompatibilities=p.get("RequiresCompatibilities", ["FARGATE"]), cpu=str(p.get("Cpu", "256")),
            memory=str(p.get("Memory", "512")), executionRoleArn=p.get("ExecutionRoleArn", ""),
            taskRoleArn=p.get("TaskRoleArn", ""))
        arn = res["taskDefinition"]["taskDefinitionArn"]
        stack.refs[logical] = arn
        stack.attrs[logical] = {"TaskDefinitionArn": arn}

    def _cognito_userpool(self, stack: Stack, logical: str, p: dict) -> None:
        kwargs = {k: p[k] for k in ("Policies", "AdminCreateUserConfig", "UsernameAttributes", "AutoVerifiedAttributes",
                                    "MfaConfiguration", "AccountRecoverySetting") if k in p}
        cognito = self.client("cognito-idp")
        existing = [found["Id"] for found in cognito.list_user_pools(MaxResults=60)["UserPools"]
                    if found["Name"] == p["UserPoolName"]]
        if existing:  # kept from an earlier run (a data directory): updated in place, users kept
            cognito.update_user_pool(UserPoolId=existing[0], **{k: v for k, v in kwargs.items()
                                                                if k not in ("UsernameAttributes",)})
            pool = cognito.describe_user_pool(UserPoolId=existing[0])["UserPool"]
        else:
            pool = cognito.create_user_pool(PoolName=p["UserPoolName"], **kwargs)["UserPool"]
        stack.refs[logical] = pool["Id"]
        stack.attrs[logical] = {"Arn": pool["Arn"], "UserPoolId": pool["Id"],
                                "ProviderName": f"cognito-idp.{self.region}.amazonaws.com/{pool['Id']}",
                                "ProviderURL": f"https://cognito-idp.{self.region}.amazonaws.com/{pool['Id']}"}

    def _cognito_userpoolclient(self, stack: Stack, logical: str, p: dict) -> None:
        kwargs = {k: p[k] for k in ("GenerateSecret", "ExplicitAuthFlows", "PreventUserExistenceErrors", "IdTokenValidity",
                                    "AccessTokenValidity", "RefreshTokenValidity", "TokenValidityUnits") if k in p}
        cognito, name = self.client("cognito-idp"), p.get("ClientName") or logical
        existing = [found["ClientId"] for found in cognito.list_user_pool_clients(
            UserPoolId=p["UserPoolId"], MaxResults=60)["UserPoolClients"] if found["ClientName"] == name]
        if existing:  # kept from an earlier run: updated in place
            client = cognito.update_user_pool_client(
                UserPoolId=p["UserPoolId"], ClientId=existing[0], ClientName=name,
                **{k: v for k, v in kwargs.items() if k != "GenerateSecret"})["UserPoolClient"]
        else:
            client = cognito.create_user_pool_client(UserPoolId=p["UserPoolId"], ClientName=name, **kwargs)["UserPoolClient"]
        stack.refs[logical] = client["ClientId"]
        stack.attrs[logical] = {"ClientId": client["ClientId"]}
