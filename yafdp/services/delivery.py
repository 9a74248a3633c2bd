"""The Delivery service: books a courier in the order's zone, or says that none is available."""

from __future__ import annotations

from zlib import crc32

from yafdp.runtime.unit_of_work import Envelope, UnitOfWork


def schedule_delivery(event: Envelope, uow: UnitOfWork) -> None:
    confirmed = event["detail"]
    order_id, zone_id = confirmed["order_id"], confirmed["delivery_zone"]
    if uow.get("delivery", order_id):
        return
    zone = uow.world.zones[zone_id]
    couriers = zone["couriers"]
    if not couriers:
        uow.put("delivery", order_id, {"order_id": order_id, "status": "failed", "zone": zone_id})
        uow.publish("Delivery_Failed", {"order_id": order_id, "customer_id": confirmed["customer_id"],
                                        "restaurant_id": confirmed["restaurant_id"], "reason": "no_courier_available"})
        return
    courier = couriers[crc32(order_id.encode()) % len(couriers)]  # stable across runs and processes
    eta = confirmed["ready_in_minutes"] + zone["travel_minutes"]
    uow.put("delivery", order_id, {"order_id": order_id, "status": "scheduled", "zone": zone_id,
                                   "courier_id": courier, "eta_minutes": eta})
    uow.publish("Delivery_Scheduled", {"order_id": order_id, "customer_id": confirmed["customer_id"],
                                       "courier_id": courier, "delivery_zone": zone_id, "eta_minutes": eta})
