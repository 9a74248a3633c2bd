"""The deployment plan: what the catalog needs on AWS or in-process (``model``), derived from the catalog
(``builder``, IAM included), and the same saga as a Step Functions state machine (``step_functions``)."""

from yafdp.plan.builder import build_plan
from yafdp.plan.model import DEFAULT_PREFIX, DeploymentPlan, Resource, RulePlan, ServicePlan, plan_resources

__all__ = ["DEFAULT_PREFIX", "DeploymentPlan", "Resource", "RulePlan", "ServicePlan", "build_plan", "plan_resources"]
