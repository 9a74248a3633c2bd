"""The workbook as a course: its chapters with their time estimates, and the glossary chapter 10 prints.

The README's chapter list and each notebook's first cell say the same times; ``tests/notebooks`` checks that
they agree.
"""

from __future__ import annotations

CHAPTERS = {  # notebook stem: (title, minutes for a learner who reads, runs and does the exercises)
    "01_identify_events": ("Identify the events", 25),
    "02_map_subscriptions": ("Map the subscriptions", 25),
    "03_deploy_bus_and_handlers": ("Deploy the bus and handlers", 30),
    "04_fire_orders": ("Fire orders", 30),
    "05_event_flow_and_latency": ("Event flow and latency", 25),
    "06_failures_and_compensations": ("Failures and compensations", 35),
    "07_add_loyalty_service": ("Add the Loyalty service, then your own", 35),
    "08_classic_or_custom_event_bus": ("Classic or Custom Event Bus?", 40),
    "09_choreography_vs_orchestration": ("Choreography vs orchestration", 40),
    "10_course_summary": ("What the course showed, and a glossary", 15),
}

GLOSSARY = {
    "saga": "A business transaction made of local steps, each committed on its own by one service, with a "
            "compensation for every step that can be followed by a failure. There is no global rollback.",
    "choreography": "A saga with no coordinator: each service reacts to events on a bus and publishes what it "
                    "did. The flow exists only in the subscriptions (chapters 02, 05).",
    "orchestration": "A saga run by a coordinator (here a Step Functions state machine) that calls each service "
                     "in turn and decides what comes next (chapter 09).",
    "compensation": "A step that semantically undoes an earlier one (a refund for a charge, points taken back), "
                    "run when a later step fails. It is new work, not an undo of the log (chapter 06).",
    "idempotency": "Doing something twice has the effect of doing it once. Here two layers: the per-(rule, "
                   "event id) delivery record, and business keys such as one charge per order id (chapter 06).",
    "outbox": "A handler's events are stored with its state change and sent only once that commits, so an "
              "event is never published for a change that was lost, nor a change kept without its event.",
    "tombstone": "A record that something did not or must not happen, kept so that a late message changes "
                 "nothing: Loyalty's failed_before_award for a failure that overtook its confirmation (chapter 07).",
    "at-least-once": "The delivery promise of the Classic bus and of SQS: every event is delivered or, once its "
                     "retries are spent, kept in a dead-letter queue (dropped where there is none, chapters 03 and "
                     "06), possibly more than once and in any order. A Custom Event Bus promises more at its ends "
                     "(each publish stored once within 5 minutes; a FIFO subscriber hands each event over once, in "
                     "its group's order) but not end to end: its SQS and Lambda targets, replays and redrives can "
                     "still deliver an event again, and each subscriber orders only its own stream (chapter 08). "
                     "On both buses handlers must be idempotent, and order-tolerant across subscribers.",
    "DLQ": "Dead-letter queue: where a message goes when it cannot be processed after its retries, with why. "
           "On the Classic topology there are two: the rule target's (EventBridge could not deliver; it holds the "
           "event) and the service queue's (the function kept failing) (chapters 03, 06). A Custom Event Bus "
           "subscriber's on-failure queue holds a record that points to the events, not the events (chapter 08).",
    "redrive": "Sending dead letters back to where they failed, once the cause is fixed; safe only because "
               "handlers are idempotent (chapter 06). On a Custom Event Bus, a subscriber's dead letters are "
               "references: redriving them is replaying those events from the bus's retention (chapter 08).",
    "replay": "Delivering past events again: on the Classic bus from an archive, for a time window; on a Custom "
              "Event Bus from its retention, by a subscriber that starts in the past (delivered as REPLAY). "
              "Consumers see them again, so business-key idempotency matters.",
    "event group": "On a Custom Event Bus, the events that share a SystemMetadata.EventGroupId set by the publisher "
                   "(here the order id): the unit a FIFO subscriber keeps in publish order, and the unit whose "
                   "throughput is limited (1,500 events + KB a second) (chapter 08; "
                   "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html).",
    "subscriber": "On a Custom Event Bus, what a rule and one of its targets are on the Classic bus: filters, one "
                  "target, a retry policy, an on-failure queue, a type and a starting position. Fan-out to N "
                  "targets is N subscribers (chapter 08; "
                  "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-subscribers.html).",
    "FIFO subscriber": "A subscriber of Type FIFO: it hands each event group's events to its target in publish "
                       "order, one at a time, and a failing event holds back only its own group while it is "
                       "retried. Each subscriber orders independently of every other, so a service with two "
                       "subscribers can still see an order's events out of order (chapter 08; "
                       "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html).",
    "deduplication at publish": "A Custom Event Bus answers a PutEvents entry SuccessCode DEDUPLICATED, and stores "
                                "and delivers nothing, when the same DeduplicationId (or, with CONTENT_BASED, the "
                                "same content) was accepted in the last 5 minutes: a producer's retry is not a "
                                "second event. The Classic bus has none (chapter 08; "
                                "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html).",
    "retention": "How long a Custom Event Bus keeps every accepted event, 1 to 365 days, so a subscriber can start "
                 "in the past and a paused one resume without loss. The Classic bus keeps events only in an "
                 "archive (chapter 08; https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-replay.html).",
    "starting position": "Where a new Custom Event Bus subscriber starts reading: LATEST (only what arrives from "
                         "now) or POINT_IN_TIME, from the retention's HORIZON (the oldest event kept) or a "
                         "TIMESTAMP; what it reads from the past arrives as REPLAY (chapter 08; "
                         "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-replay.html).",
}


def chapter_table():
    """The chapters with their time estimates, as a table (and the total)."""
    import pandas as pd

    table = pd.DataFrame([{"chapter": stem[:2], "title": title, "minutes": minutes}
                          for stem, (title, minutes) in CHAPTERS.items()]).set_index("chapter")
    table.loc["all"] = ["the whole course", int(table["minutes"].sum())]
    return table


def glossary_table():
    """The glossary as a table, one term a row."""
    import pandas as pd

    return pd.DataFrame([{"term": term, "meaning": meaning} for term, meaning in GLOSSARY.items()]).set_index("term")


def is_the_course_catalog(catalog) -> bool:
    """Whether ``catalog`` has every event of the shipped catalog the course's text is written about (the shipped
    ``data/`` or a copy of it, extended or not)."""
    from yafdp.catalog import load_catalog

    return set(load_catalog().events) <= set(catalog.events)


def catalog_note(catalog):
    """What a chapter says at its top when it runs on another catalog (``yafdp workbook --catalog DIR``): that its
    text is about YAFDP while its tables, figures and runs are the catalog's; nothing on the course's catalog."""
    from yafdp.analysis.notebook import Html

    if is_the_course_catalog(catalog):
        return Html("", "")
    text = (f"This chapter runs on your catalog, {catalog.path} (bus {catalog.bus.name!r}, saga started by "
            f"{catalog.bus.start_event}). Its text is written about YAFDP, the course's food-delivery example: the "
            "tables, figures and runs below are your catalog's, and the cells that only make sense for YAFDP say "
            "so and skip.")
    return Html(f"<p><i>{text}</i></p>", text)
