"""The Custom Event Bus's documented limits and defaults, each with its source.

UG = Amazon EventBridge User Guide, Custom Event Bus chapter; M = the botocore service model
``eventbridgev2/2025-05-15/service-2.json`` (the API Reference, https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/).
Digest with every citation: ``shared/custom-event-bus/SPEC.md``.
"""

from __future__ import annotations

UG = "https://docs.aws.amazon.com/eventbridge/latest/userguide/"
QUOTAS_PAGE = UG + "eb-quota.html#eb-custom-bus-quotas"
RETRY_PAGE = UG + "eb-custom-bus-retry.html"
ORDERING_PAGE = UG + "eb-custom-bus-ordering.html"
FILTERING_PAGE = UG + "eb-custom-bus-filtering.html"
REPLAY_PAGE = UG + "eb-custom-bus-replay.html"
UPDATE_PAGE = UG + "eb-custom-bus-update.html"
BATCHING_PAGE = UG + "eb-custom-bus-batching.html"
TRANSFORM_PAGE = UG + "eb-custom-bus-transform.html"
CREATE_PAGE = UG + "eb-custom-bus-create.html"
PUBLISH_PAGE = UG + "eb-custom-bus-publish.html"
API_PUT_EVENTS = "https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/API_PutEvents.html"
API_CREATE_SUBSCRIBER = "https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/API_CreateSubscriber.html"

# Publishing (UG quotas; M PutEvents): 1-100 entries, 1 MB per request, the 5-minute deduplication window.
MAX_ENTRIES = 100
MAX_REQUEST_BYTES = 1_048_576
DEDUPLICATION_WINDOW_SECONDS = 300
MAX_GROUP_ID_LENGTH = 128  # M EventGroupId
MAX_DEDUPLICATION_ID_LENGTH = 128  # M DeduplicationId
MAX_SOURCE_LENGTH, MAX_DETAIL_TYPE_LENGTH, MAX_RESOURCES = 256, 128, 100  # M PutEventsRequestEntry
# Throughput (UG quotas): per event group, events + total KB in any one-second window; per bus, events/s.
GROUP_EVENTS_PLUS_KB_PER_SECOND = 1_500
BUS_EVENTS_PER_SECOND = 500_000

# Retry policy of a subscriber (UG retry; M RetryPolicy): MaxRetryAttempts counts retries after the first attempt.
DEFAULT_MAX_RETRY_ATTEMPTS = 5
DEFAULT_MAX_EVENT_AGE_SECONDS = 300
MAX_RETRY_ATTEMPTS_RANGE = (0, 185)
MAX_EVENT_AGE_RANGE = (60, 86_400)
RETRY_STRATEGIES = ("ALL",)

# Retention (UG create; M RetentionPeriodInDays): 1-365 days, default 1 day.
RETENTION_DAYS_RANGE = (1, 365)
DEFAULT_RETENTION_DAYS = 1

# Subscribers (M CreateSubscriberRequest; UG filtering, transform, batching, update).
SUBSCRIBER_TYPES = ("FIFO", "UNORDERED")
SUBSCRIBER_STATES = ("RUNNING", "STOPPED")
STARTING_POSITIONS = ("LATEST", "POINT_IN_TIME")
POINT_TYPES = ("HORIZON", "TIMESTAMP")
RESUME_POSITIONS = ("LAST_PROCESSED", "LATEST")
FILTER_SCOPES = ("DATA", "METADATA", "SYSTEM_METADATA")
FILTER_LANGUAGES = ("EVENT_BRIDGE_PATTERN",)
MAX_FILTER_BYTES = 4_096  # all filters of one subscriber together (UG filtering)
MAX_OR_COMBINATIONS = 1_000  # UG filtering
TRANSFORMER_TYPES = ("RAW", "WITH_METADATA", "JSONATA")
MAX_JSONATA_LENGTH = 8_192
BATCH_SIZE_RANGE = (1, 500)
BATCH_WINDOW_RANGE = (0, 300)
INVOCATION_TYPES = ("EVENT", "REQUEST_RESPONSE")
INVOCATION_TIMEOUT_RANGE = (1, 30)
LOG_LEVELS = ("OFF", "ERROR", "INFO")
LOG_PAYLOADS = ("FULL", "ON_ERROR_ONLY")
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 512
MAX_TAGS = 200  # M TagMap (CloudFormation allows 50)
MAX_SUBSCRIBERS_PER_BUS = 10_000  # UG quotas, adjustable
MAX_BUSES_PER_ACCOUNT = 5  # UG quotas, adjustable
MAX_DLQ_ERROR_MESSAGE = 1_024  # UG retry: errorMessage is cut at 1,024 characters
# Largest MaxBatchSize per target kind (CloudFormation's BatchConfiguration.MaxBatchSize description).
TARGET_MAX_BATCH = {"sqs": 10, "sns": 10, "lambda": 100, "states": 100, "kinesis": 500, "firehose": 500,
                    "events": 100, "execute-api": 1, "universal": 1}

# The Classic bus's targets, for comparison (UG "Retrying event delivery"): 185 retries, 24 hours.
CLASSIC_DEFAULT_MAX_RETRY_ATTEMPTS = 185
CLASSIC_DEFAULT_MAX_EVENT_AGE_SECONDS = 86_400
