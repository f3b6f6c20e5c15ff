"""The sub2api host adapter: the only code in this project that speaks host HTTP.

from hosts.sub2api import Sub2ApiClient, client_for_host, HostError
client = client_for_host(host)
group, created = client.groups.ensure(name="rm-acme", subscription_type="subscription")
"""

from __future__ import annotations

from hosts.sub2api.client import HostHTTP, Sub2ApiClient, client_for_host, shared_client_for_host
from hosts.sub2api.errors import HostError
from hosts.sub2api.types import (
    Account,
    AccountTestResult,
    ApiKey,
    Channel,
    ChatCompletion,
    GatewayRefusal,
    Group,
    HostCapabilities,
    HostModel,
    OpenAICredentials,
    PricingEntry,
    Subscription,
    TestEvent,
    User,
    UserSession,
)

__all__ = [
    "Account",
    "AccountTestResult",
    "ApiKey",
    "Channel",
    "ChatCompletion",
    "GatewayRefusal",
    "Group",
    "HostCapabilities",
    "HostError",
    "HostHTTP",
    "HostModel",
    "OpenAICredentials",
    "PricingEntry",
    "Sub2ApiClient",
    "Subscription",
    "TestEvent",
    "User",
    "UserSession",
    "client_for_host",
    "shared_client_for_host",
]
