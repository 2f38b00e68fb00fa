#!/usr/bin/env python3
"""The floor for the scan benchmark: the minimal raw API calls that fetch the
same data dbaudit collects for one account and region, made serially with
boto3. Prints: calls, wall seconds."""
import sys
import time

import boto3

endpoint, account = sys.argv[1], sys.argv[2]
t0 = time.time()
calls = 0
sts = boto3.client("sts", endpoint_url=endpoint, region_name="eu-west-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/dbaudit-audit", RoleSessionName="floor")["Credentials"]
calls += 1
s = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                  aws_session_token=c["SessionToken"], region_name="eu-west-1")
s.client("sts", endpoint_url=endpoint).get_caller_identity()
calls += 1
rds, ec2, eks, iam, sm = (s.client(x, endpoint_url=endpoint)
                          for x in ("rds", "ec2", "eks", "iam", "secretsmanager"))


def pages(client, op, key, **kw):
    global calls
    out, token = [], None
    marker_key = "Marker" if client is rds or client is iam else "NextToken"
    while True:
        args = dict(kw)
        if token:
            args[marker_key] = token
        r = getattr(client, op)(**args)
        calls += 1
        out += r.get(key, [])
        token = r.get("Marker") or r.get("NextToken")
        if not token:
            return out


clusters = pages(rds, "describe_db_clusters", "DBClusters")
instances = pages(rds, "describe_db_instances", "DBInstances")
pages(rds, "describe_db_subnet_groups", "DBSubnetGroups")
pages(rds, "describe_global_clusters", "GlobalClusters")
for group in sorted({c["DBClusterParameterGroup"] for c in clusters if c.get("DBClusterParameterGroup")}):
    pages(rds, "describe_db_cluster_parameters", "Parameters", DBClusterParameterGroupName=group)
for snap in pages(rds, "describe_db_cluster_snapshots", "DBClusterSnapshots", SnapshotType="manual"):
    rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"])
    calls += 1
PUBLISHED_CAS = {"rds-ca-2019", "rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"}
if any("CertificateDetails" not in i and i.get("CACertificateIdentifier") not in PUBLISHED_CAS for i in instances):
    pages(rds, "describe_certificates", "Certificates")
for proxy in pages(rds, "describe_db_proxies", "DBProxies"):
    pages(rds, "describe_db_proxy_targets", "Targets", DBProxyName=proxy["DBProxyName"])
for c in clusters:
    if c.get("MasterUserSecret"):
        sm.describe_secret(SecretId=c["MasterUserSecret"]["SecretArn"])
        calls += 1
for op, key in [("describe_vpcs", "Vpcs"), ("describe_subnets", "Subnets"), ("describe_route_tables", "RouteTables"),
                ("describe_internet_gateways", "InternetGateways"), ("describe_nat_gateways", "NatGateways"),
                ("describe_egress_only_internet_gateways", "EgressOnlyInternetGateways"),
                ("describe_security_groups", "SecurityGroups")]:
    pages(ec2, op, key)
for name in pages(eks, "list_clusters", "clusters"):
    eks.describe_cluster(name=name)
    calls += 1
    for ng in pages(eks, "list_nodegroups", "nodegroups", clusterName=name):
        eks.describe_nodegroup(clusterName=name, nodegroupName=ng)
        calls += 1
    # moto has no Pod Identity (404): the call is counted as dbaudit makes it.
    try:
        for a in pages(eks, "list_pod_identity_associations", "associations", clusterName=name):
            eks.describe_pod_identity_association(clusterName=name, associationId=a["associationId"])
            calls += 1
    except Exception:
        calls += 1
pages(iam, "get_account_authorization_details", "UserDetailList",
      Filter=["User", "Group", "Role", "LocalManagedPolicy", "AWSManagedPolicy"])
iam.list_open_id_connect_providers()
calls += 1
print(calls, round(time.time() - t0, 3))
