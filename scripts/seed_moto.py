#!/usr/bin/env python3
"""Seeds estates into a moto server through the AWS API (boto3), for the
integration tests, the emulator demo and the scan benchmark.

    seed_moto.py --endpoint URL demo
    seed_moto.py --endpoint URL clusters --account 333333333333 --count 500 [--readers 2] [--developers 20]
    seed_moto.py --endpoint URL instances --account 444444444444 --count 120
    seed_moto.py --endpoint URL fleet --count 40 --first 600000000000
    seed_moto.py --endpoint URL bucket --name dbaudit-shards
    seed_moto.py --endpoint URL org --count 12 [--estate]   (prints the account ids as JSON)

Each account is a separate moto world reached by assuming a role in it.
moto quirks handled here (docs/live-scan.md, "moto (the test emulator) versus AWS"):
  * EKS: moto stores resourcesVpcConfig verbatim and creates no cluster
    security group, so we create the SG in EC2 and inject clusterSecurityGroupId
    and vpcId into the CreateCluster body.
  * Aurora members do not inherit the subnet group or PubliclyAccessible from
    the cluster: we pass them on each instance. moto omits PubliclyAccessible
    from DescribeDBInstances for an instance created without it (AWS always
    reports it), and dbaudit reads an absent field as unknown (an `error`),
    never as false: every instance here is created with it.
  * Seeding is serial: moto is not safe for concurrent writes to one account.
  * Instances are created on a real CA (`rds-ca-rsa2048-g1`): moto's
    default `rds-ca-default` is no CA AWS has, and moto serves neither
    CertificateDetails nor DescribeCertificates.
  * RDS turns rotation on (every 7 days) for the master secrets it manages;
    moto does not, so the seeding calls RotateSecret itself.
  * Performance Insights' KMS key is dropped by moto at create: set by a
    later ModifyDBInstance.
  * moto has no EKS Pod Identity (404): nothing to seed; the demo's Pod
    Identity violation exists only in fixtures/demo.
"""
import argparse
import json
import sys

import boto3

REGION = "eu-west-1"
AZS = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def session(endpoint, account):
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/seeder", RoleSessionName="seed")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


class Account:
    def __init__(self, endpoint, account, env):
        self.account, self.env = account, env
        s = session(endpoint, account)
        self.ec2 = s.client("ec2", endpoint_url=endpoint)
        self.rds = s.client("rds", endpoint_url=endpoint)
        self.eks = s.client("eks", endpoint_url=endpoint)
        self.iam = s.client("iam", endpoint_url=endpoint)
        self.secrets = s.client("secretsmanager", endpoint_url=endpoint)
        self.param_groups = set()

    # The parameters every seeded group sets; moto has no engine defaults
    # for aurora-postgresql (DescribeDBClusterParameters returns only what
    # was modified), so the seeding writes each one dbaudit reads.
    PARAMS = {"rds.force_ssl": "1", "password_encryption": "scram-sha-256", "log_connections": "1",
              "shared_preload_libraries": "pg_stat_statements"}

    def param_group(self, name=None, **changes):
        """A DB cluster parameter group (created once) with PARAMS and `changes`."""
        name = name or f"{self.env}-aurora-pg16"
        if name not in self.param_groups:
            self.rds.create_db_cluster_parameter_group(
                DBClusterParameterGroupName=name, DBParameterGroupFamily="aurora-postgresql16",
                Description=f"{name} (seeded by dbaudit's tests)")
            params = {**self.PARAMS, **{k.replace("__", "."): v for k, v in changes.items()}}
            self.rds.modify_db_cluster_parameter_group(
                DBClusterParameterGroupName=name,
                Parameters=[{"ParameterName": k, "ParameterValue": v, "ApplyMethod": "immediate"}
                            for k, v in params.items()])
            self.param_groups.add(name)
        return name

    def network(self, eks=True):
        ec2 = self.ec2
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.private, self.public = [], []
        for i, az in enumerate(AZS):
            self.private.append(ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"])
            self.public.append(ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{100 + i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"])
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=self.vpc)
        pub_rt = ec2.create_route_table(VpcId=self.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=pub_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        for s in self.public:
            ec2.associate_route_table(RouteTableId=pub_rt, SubnetId=s)
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=self.public[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
        priv_rt = ec2.create_route_table(VpcId=self.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=priv_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        for s in self.private:
            ec2.associate_route_table(RouteTableId=priv_rt, SubnetId=s)
        self.rds.create_db_subnet_group(DBSubnetGroupName=f"{self.env}-db-private", DBSubnetGroupDescription="private",
                                        SubnetIds=self.private)
        self.rds.create_db_subnet_group(DBSubnetGroupName=f"{self.env}-db-public", DBSubnetGroupDescription="public",
                                        SubnetIds=self.public)
        self.eks_sg = ec2.create_security_group(GroupName=f"eks-cluster-sg-{self.env}", Description="EKS cluster SG",
                                                VpcId=self.vpc)["GroupId"]
        if eks:
            self.create_eks(f"{self.env}-eks")

    def create_eks(self, name):
        def inject(request, **_):
            body = json.loads(request.body)
            body["resourcesVpcConfig"]["clusterSecurityGroupId"] = self.eks_sg
            body["resourcesVpcConfig"]["vpcId"] = self.vpc
            request.data = json.dumps(body).encode()
            if "Content-Length" in request.headers:
                del request.headers["Content-Length"]
        self.eks.meta.events.register("before-sign.eks.CreateCluster", inject)
        self.eks.create_cluster(name=name, roleArn=f"arn:aws:iam::{self.account}:role/eks",
                                resourcesVpcConfig={"subnetIds": self.private})
        self.eks.meta.events.unregister("before-sign.eks.CreateCluster", inject)

    def db_sg(self, name, cidrs=()):
        sg = self.ec2.create_security_group(GroupName=f"{self.env}-db-{name}", Description=name, VpcId=self.vpc)["GroupId"]
        perms = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": self.eks_sg}]}]
        for c in cidrs:
            perms.append({"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": c}]})
        self.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms)
        return sg

    def cluster(self, name, services, azs, encrypted=True, deletion_protection=None, public=False,
                cidrs=(), subnet_group=None, iam_auth=True, backup=None, max_acu=None,
                master="dbadmin", managed_password=True, logs=None, auto_minor=True, param_group=None,
                engine_version="16.4", rotation_days=7, pi_key=None, last_ca=None):
        prod = self.env == "prod"
        cid = f"{self.env}-{name}"
        sg = self.db_sg(name, cidrs)
        group = subnet_group or f"{self.env}-db-private"
        self.rds.create_db_cluster(
            DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion=engine_version,
            MasterUsername=master, DBClusterParameterGroupName=param_group or self.param_group(),
            **({"ManageMasterUserPassword": True} if managed_password else {"MasterUserPassword": "not-a-secret-1"}),
            EnableCloudwatchLogsExports=logs if logs is not None else (["postgresql", "iam-db-auth-error"] if prod else []),
            ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": max_acu or (16.0 if prod else 4.0)},
            EnableIAMDatabaseAuthentication=iam_auth, StorageEncrypted=encrypted,
            DeletionProtection=prod if deletion_protection is None else deletion_protection,
            BackupRetentionPeriod=backup if backup is not None else (14 if prod else 1),
            VpcSecurityGroupIds=[sg], DBSubnetGroupName=group,
            Tags=[{"Key": "service", "Value": ",".join(services)}, {"Key": "env", "Value": self.env}])
        for i, az in enumerate(azs):
            iid = f"{cid}-{i + 1}"
            self.rds.create_db_instance(
                DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine="aurora-postgresql",
                DBInstanceClass="db.serverless", AvailabilityZone=az, DBSubnetGroupName=group,
                PubliclyAccessible=public and i == 0, AutoMinorVersionUpgrade=auto_minor,
                CACertificateIdentifier=last_ca if (last_ca and i == len(azs) - 1) else "rds-ca-rsa2048-g1")
            if pi_key:
                self.rds.modify_db_instance(DBInstanceIdentifier=iid, EnablePerformanceInsights=True,
                                            PerformanceInsightsKMSKeyId=pi_key)
        if managed_password:
            self.rotate_master_secret(cid, rotation_days)
        return sg

    def rotate_master_secret(self, cid, days=7):
        """What RDS does for a secret it manages (moto does not)."""
        secret = self.rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]["MasterUserSecret"]
        self.secrets.rotate_secret(SecretId=secret["SecretArn"], RotationRules={"AutomaticallyAfterDays": days})

    def snapshot(self, name, cluster, restore):
        """A manual cluster snapshot that `restore` (account ids or `all`) may restore."""
        self.rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name, DBClusterIdentifier=cluster)
        if restore:
            self.rds.modify_db_cluster_snapshot_attribute(
                DBClusterSnapshotIdentifier=name, AttributeName="restore", ValuesToAdd=list(restore))

    def developers(self):
        if self.env == "prod":
            doc = {"Version": "2012-10-17", "Statement": [
                {"Sid": "ReadRds", "Effect": "Allow", "Action": ["rds:Describe*", "rds:List*"], "Resource": "*"},
                {"Sid": "DenyRdsWrites", "Effect": "Deny", "NotAction": ["rds:Describe*", "rds:List*"],
                 "Resource": "arn:aws:rds:*:*:*"}]}
        else:
            doc = {"Version": "2012-10-17", "Statement": [
                {"Sid": "ReadWriteRds", "Effect": "Allow", "Action": ["rds:*", "rds-data:*"], "Resource": "*"}]}
        arn = self.iam.create_policy(PolicyName="developers-rds", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
        self.iam.create_group(GroupName="developers")
        self.iam.attach_group_policy(GroupName="developers", PolicyArn=arn)
        self.iam.create_user(UserName="alice")
        self.iam.add_user_to_group(GroupName="developers", UserName="alice")

    def app_role(self, name, sub, sub_op="StringEquals", connect_resource=None):
        issuer = "oidc.eks.eu-west-1.amazonaws.com/id/" + self.env.upper()
        if not getattr(self, "oidc", False):
            self.iam.create_open_id_connect_provider(Url="https://" + issuer, ClientIDList=["sts.amazonaws.com"],
                                                     ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
            self.oidc = True
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{self.account}:oidc-provider/{issuer}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {sub_op: {f"{issuer}:sub": sub},
                          "StringEquals": {f"{issuer}:aud": "sts.amazonaws.com"}}}]}
        if sub_op == "StringEquals":
            trust["Statement"][0]["Condition"] = {
                "StringEquals": {f"{issuer}:sub": sub, f"{issuer}:aud": "sts.amazonaws.com"}}
        self.iam.create_role(RoleName=f"{name}-app", AssumeRolePolicyDocument=json.dumps(trust))
        connect = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "rds-db:connect",
            "Resource": connect_resource
            or f"arn:aws:rds-db:eu-west-1:{self.account}:dbuser:cluster-{self.env.upper()}-{name.upper()}/{name}"}]}
        self.iam.put_role_policy(RoleName=f"{name}-app", PolicyName="connect", PolicyDocument=json.dumps(connect))

    def oncall_hotfix(self):
        """Planted: on-call developers may modify prod clusters (no deny guard)."""
        doc = {"Version": "2012-10-17", "Statement": [
            {"Sid": "HotfixClusters", "Effect": "Allow", "Action": "rds:ModifyDBCluster",
             "Resource": f"arn:aws:rds:eu-west-1:{self.account}:cluster:prod-*"}]}
        arn = self.iam.create_policy(PolicyName="dev-hotfix", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
        self.iam.create_group(GroupName="oncall")
        self.iam.attach_group_policy(GroupName="oncall", PolicyArn=arn)
        self.iam.create_user(UserName="bob")
        self.iam.add_user_to_group(GroupName="oncall", UserName="bob")


def demo(endpoint):
    t = Account(endpoint, "111111111111", "test")
    t.network()
    t.developers()
    t.app_role("orders", "system:serviceaccount:orders:orders")
    # Planted: unencrypted, minor engine versions not applied automatically,
    # and its parameter group still accepts md5 password hashes.
    t.cluster("shared", ["billing", "catalog", "orders", "payments"], ["eu-west-1a"], encrypted=False, auto_minor=False,
              param_group=t.param_group("test-aurora-pg16", password_encryption="md5"))
    # Planted: a snapshot of it, so unencrypted too.
    t.snapshot("test-shared-fixtures", "test-shared", [])
    # Planted: a legacy MySQL instance outside Aurora, without IAM auth.
    legacy = t.db_sg("legacy")
    t.rds.create_db_instance(
        DBInstanceIdentifier="test-legacy-mysql", Engine="mysql", DBInstanceClass="db.t3.micro",
        MasterUsername="dbadmin", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
        VpcSecurityGroupIds=[legacy], DBSubnetGroupName="test-db-private", AvailabilityZone="eu-west-1b",
        StorageEncrypted=True, EnableIAMDatabaseAuthentication=False, CACertificateIdentifier="rds-ca-rsa2048-g1",
        PubliclyAccessible=False)

    p = Account(endpoint, "222222222222", "prod")
    p.network()
    p.developers()
    p.oncall_hotfix()
    p.app_role("orders", "system:serviceaccount:orders:orders")
    # Planted: billing's role trusts any service account of its namespace and
    # may connect as any DB user of any cluster.
    p.app_role("billing", "system:serviceaccount:billing:*", sub_op="StringLike",
               connect_resource=f"arn:aws:rds-db:eu-west-1:{p.account}:dbuser:*/*")
    orders_sg = p.cluster("orders", ["orders"], AZS)
    # Planted: orders is fronted by an RDS Proxy that does not require TLS
    # (IAM auth required, private subnets, only the EKS cluster admitted;
    # the orders cluster admits the proxy's group).
    proxy_sg = p.ec2.create_security_group(GroupName="prod-orders-proxy", Description="proxy", VpcId=p.vpc)["GroupId"]
    p.ec2.authorize_security_group_ingress(GroupId=proxy_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": p.eks_sg}]}])
    p.ec2.authorize_security_group_ingress(GroupId=orders_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": proxy_sg}]}])
    secret = p.rds.describe_db_clusters(DBClusterIdentifier="prod-orders")["DBClusters"][0]["MasterUserSecret"]
    p.rds.create_db_proxy(
        DBProxyName="prod-orders-proxy", EngineFamily="POSTGRESQL", RequireTLS=False,
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret["SecretArn"], "IAMAuth": "REQUIRED",
               "ClientPasswordAuthType": "POSTGRES_SCRAM_SHA_256"}],
        RoleArn=f"arn:aws:iam::{p.account}:role/proxy", VpcSubnetIds=p.private, VpcSecurityGroupIds=[proxy_sg])
    p.rds.register_db_proxy_targets(DBProxyName="prod-orders-proxy", DBClusterIdentifiers=["prod-orders"])
    # Planted: billing's security group also admits a VPN range; it does not
    # export failed IAM authentications; its master secret rotates every 90
    # days; its Performance Insights use a key that is not the cluster's.
    p.cluster("billing", ["billing"], AZS, cidrs=["10.200.0.0/16"], logs=["postgresql"], rotation_days=90,
              pi_key=f"arn:aws:kms:eu-west-1:{p.account}:key/aws-rds-managed")
    # Planted: catalog's readers share the writer's AZ; deletion protection
    # off; capped at 4 ACUs (prod needs at least 8).
    p.cluster("catalog", ["catalog"], ["eu-west-1a"] * 3, deletion_protection=False, max_acu=4.0)
    # Planted: payments and ledger share one prod cluster; its last reader is
    # still on rds-ca-2019 (expired in August 2024; no automatic rotation).
    p.cluster("payments", ["ledger", "payments"], AZS, last_ca="rds-ca-2019")
    # Planted: reporting in public subnets, open to the world, public writer;
    # master user `postgres` with a password RDS does not manage.
    # Its parameter group does not force TLS either, and it still runs
    # PostgreSQL 14 (standard support ends 2027-02-28).
    p.cluster("reporting", ["reporting"], AZS, public=True, cidrs=["0.0.0.0/0"], subnet_group="prod-db-public",
              engine_version="14.12",
              master="postgres", managed_password=False,
              param_group=p.param_group("prod-reporting-legacy", rds__force_ssl="0"))
    # Planted: a copy of prod's orders database shared with the test account.
    p.snapshot("prod-orders-pre-migration", "prod-orders", [t.account])
    # Planted: an export of reporting's data anyone may restore.
    p.snapshot("prod-reporting-export", "prod-reporting", ["all"])


def broad_developers(a, count):
    """`count` developer users holding a broad grant (RDS, the Data API and
    security groups on everything), the case whose findings must stay short."""
    doc = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Everything", "Effect": "Allow",
        "Action": ["rds:*", "rds-data:*", "ec2:*SecurityGroup*"], "Resource": "*"}]}
    arn = a.iam.create_policy(PolicyName="rds-full", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    a.iam.create_group(GroupName="developers")
    a.iam.attach_group_policy(GroupName="developers", PolicyArn=arn)
    for n in range(count):
        a.iam.create_user(UserName=f"dev-{n:03d}")
        a.iam.add_user_to_group(GroupName="developers", UserName=f"dev-{n:03d}")


def clusters(endpoint, account, count, readers, developers=0):
    a = Account(endpoint, account, "prod")
    a.network()
    if developers:
        broad_developers(a, developers)
    sg = a.db_sg("shared")
    for n in range(count):
        cid = f"bench-{n:04d}"
        a.rds.create_db_cluster(
            DBClusterIdentifier=cid, Engine="aurora-postgresql", EngineVersion="16.4", MasterUsername="dbadmin",
            DBClusterParameterGroupName=a.param_group(), ManageMasterUserPassword=True, EnableCloudwatchLogsExports=["postgresql", "iam-db-auth-error"],
            EnableIAMDatabaseAuthentication=True, StorageEncrypted=True,
            DeletionProtection=True, BackupRetentionPeriod=14, VpcSecurityGroupIds=[sg],
            DBSubnetGroupName="prod-db-private", Tags=[{"Key": "service", "Value": cid}],
            ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 8.0})
        for i in range(readers + 1):
            a.rds.create_db_instance(
                DBInstanceIdentifier=f"{cid}-{i + 1}", DBClusterIdentifier=cid, Engine="aurora-postgresql",
                DBInstanceClass="db.serverless", AvailabilityZone=AZS[i % 3], DBSubnetGroupName="prod-db-private",
                CACertificateIdentifier="rds-ca-rsa2048-g1", PubliclyAccessible=False)
        a.rotate_master_secret(cid)


def instances(endpoint, account, count):
    a = Account(endpoint, account, "test")
    a.network()
    sg = a.db_sg("many")
    for n in range(count):
        a.rds.create_db_instance(
            DBInstanceIdentifier=f"pg-{n:04d}", Engine="postgres", DBInstanceClass="db.t4g.micro",
            MasterUsername="dbadmin", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
            VpcSecurityGroupIds=[sg], DBSubnetGroupName="test-db-private", AvailabilityZone=AZS[n % 3],
            StorageEncrypted=True, EnableIAMDatabaseAuthentication=True, CACertificateIdentifier="rds-ca-rsa2048-g1",
            PubliclyAccessible=False)


def indb(endpoint, dev_user, app_user):
    """The control-plane half of the in-database end-to-end test: prod's
    orders cluster (master user `postgres`, as the test server's), developers
    who may connect as `dev_user` and the orders app (IRSA) as `app_user`,
    on any cluster (moto's resource ids are random)."""
    a = Account(endpoint, "222222222222", "prod")
    a.network()
    a.developers()
    connect = {"Version": "2012-10-17", "Statement": [{
        "Sid": "DevConnect", "Effect": "Allow", "Action": "rds-db:connect",
        "Resource": f"arn:aws:rds-db:eu-west-1:{a.account}:dbuser:*/{dev_user}"}]}
    a.iam.put_group_policy(GroupName="developers", PolicyName="connect", PolicyDocument=json.dumps(connect))
    a.app_role("orders", "system:serviceaccount:orders:orders",
               connect_resource=f"arn:aws:rds-db:eu-west-1:{a.account}:dbuser:*/{app_user}")
    a.cluster("orders", ["orders"], AZS, master="postgres")


def fleet(endpoint, count, first):
    """`count` accounts (ids from `first`; even ones test, odd ones prod),
    each with a private network (no EKS cluster) and one small cluster: the
    estate of the sharding tests."""
    for n in range(count):
        a = Account(endpoint, f"{first + n:012d}", "prod" if n % 2 else "test")
        a.network(eks=False)
        a.cluster(f"svc{n:02d}", [f"svc{n:02d}"], ["eu-west-1a"])


def org(endpoint, count, estate=False):
    """An organization in the scanner's own account: OUs Workloads/Test,
    Workloads/Prod and Sandbox; `count` accounts alternating between Test
    and Prod; in Sandbox one account tagged env=prod and one untagged (no
    mapping matches it); one closed account (SUSPENDED). Prints the ids."""
    o = boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing")
    o.create_organization(FeatureSet="ALL")
    root = o.list_roots()["Roots"][0]["Id"]

    def ou(parent, name):
        return o.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]

    def account(name, parent):
        acc = o.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]["AccountId"]
        if parent != root:
            o.move_account(AccountId=acc, SourceParentId=root, DestinationParentId=parent)
        return acc

    work = ou(root, "Workloads")
    test_ou, prod_ou, sandbox = ou(work, "Test"), ou(work, "Prod"), ou(root, "Sandbox")
    ids = {"test": [], "prod": []}
    for n in range(count):
        env = "prod" if n % 2 else "test"
        acc = account(f"svc{n:02d}-{env}", prod_ou if env == "prod" else test_ou)
        ids[env].append(acc)
        if estate:
            # A small estate: a private network (no EKS cluster) and one
            # cluster serving the product line's service in both envs.
            a = Account(endpoint, acc, env)
            a.network(eks=False)
            a.cluster(f"line{n // 2:02d}", [f"line{n // 2:02d}"], ["eu-west-1a"])
    ids["legacy"] = account("legacy", sandbox)
    o.tag_resource(ResourceId=ids["legacy"], Tags=[{"Key": "env", "Value": "prod"}])
    ids["scratch"] = account("scratch", sandbox)
    ids["closed"] = account("closed", sandbox)
    o.close_account(AccountId=ids["closed"])
    print(json.dumps(ids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("demo")
    c = sub.add_parser("clusters")
    c.add_argument("--account", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--readers", type=int, default=2)
    c.add_argument("--developers", type=int, default=0,
                   help="developer users with a broad RDS and security-group grant")
    i = sub.add_parser("instances")
    i.add_argument("--account", required=True)
    i.add_argument("--count", type=int, required=True)
    b = sub.add_parser("bucket", help="an S3 bucket in the scanner's own account (the shard store)")
    b.add_argument("--name", required=True)
    g = sub.add_parser("org")
    g.add_argument("--count", type=int, default=12)
    g.add_argument("--estate", action="store_true", help="a small estate in each workload account")
    d = sub.add_parser("indb", help="prod's orders cluster and who may connect as which DB user")
    d.add_argument("--dev-user", required=True)
    d.add_argument("--app-user", required=True)
    f = sub.add_parser("fleet")
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--first", type=int, default=600000000000)
    args = ap.parse_args()
    if args.cmd == "org":
        org(args.endpoint, args.count, args.estate)
    elif args.cmd == "bucket":
        boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION, aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(
            Bucket=args.name, CreateBucketConfiguration={"LocationConstraint": REGION})
    elif args.cmd == "indb":
        indb(args.endpoint, args.dev_user, args.app_user)
    elif args.cmd == "fleet":
        fleet(args.endpoint, args.count, args.first)
    elif args.cmd == "demo":
        demo(args.endpoint)
    elif args.cmd == "clusters":
        clusters(args.endpoint, args.account, args.count, args.readers, args.developers)
    else:
        instances(args.endpoint, args.account, args.count)


if __name__ == "__main__":
    sys.exit(main())
