"""The SMS sender of the notification outbox (``kind`` ``sms``): HCP_SMS_URL or the log.

The operator's gateway gets a JSON POST ``{phone, text}``; any 2xx is sent, anything else
is a SendError the send task retries with backoff. Without HCP_SMS_URL the text is
written to the log, never the phone. The phone is decrypted only here, at sending time;
the outbox row holds the invitation's id alone. SMS go out in batches
(service.notify.deliver_batch): one query reads the texts and phones of a whole batch.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from config import Settings
from models import STAGE_LABELS, Invitation, Project, ServiceItem
from service import notify
from service.invitations import tokens
from service.privacy import decrypt

log = logging.getLogger(__name__)

KIND = "sms"  # the outbox rows' kind and this sender's channel


def sms_text(item_name: str, stage: str, nonce: str) -> str:
    """The item's name and the link, nothing personal."""
    return (f"{notify.PREFIX}您办理的“{item_name}”已{STAGE_LABELS[stage]}，欢迎对本次服务作出评价："
            f"{tokens.link(tokens.token_for(nonce))}")


# What the texts and the phones need, in one round trip for a whole batch.
_INVITED = (select(Invitation.id, Invitation.stage, Invitation.nonce, Project.applicant_phone_enc,
                   ServiceItem.name.label("item_name"))
            .join(Project, Project.id == Invitation.project_id).join(ServiceItem, ServiceItem.id == Project.item_id)
            .where(Invitation.id.in_(bindparam("invitation_ids", expanding=True))))


@notify.sender(KIND)
def send_sms(payload: dict, settings: Settings, session: Session) -> None:
    outcome = send_sms_batch([(0, payload)], settings, session).get(0)
    if outcome is not None:
        raise outcome


@notify.batch_sender(KIND)
def send_sms_batch(deliveries: list[tuple[int, dict]], settings: Settings,
                   session: Session) -> dict[int, Exception | None]:
    """Each delivery's outcome (None: sent). A gateway that cannot be reached ends the
    batch: the deliveries after it get no outcome (not tried), rather than a timeout each."""
    ids = [payload.get("invitation_id") for _, payload in deliveries]
    with session.no_autoflush:  # the deliveries' attempts are written with their outcomes, after
        invited = {row.id: row for row in session.execute(_INVITED, {"invitation_ids": ids})}
    outcomes: dict[int, Exception | None] = {}
    for (delivery_id, _), invitation_id in zip(deliveries, ids):
        try:
            _send(invited.get(invitation_id), settings)
            outcomes[delivery_id] = None
        except Unreachable as err:
            outcomes[delivery_id] = err
            break
        except (notify.SendError, notify.Undeliverable) as err:
            outcomes[delivery_id] = err
    return outcomes


class Unreachable(notify.SendError):
    """The gateway did not answer at all (refused, timed out), as opposed to refusing one message."""


def _send(invitation, settings: Settings) -> None:
    if invitation is None:
        raise notify.Undeliverable("the invitation no longer exists")
    phone = decrypt(invitation.applicant_phone_enc)
    if not phone:
        raise notify.Undeliverable("the applicant left no phone")
    text = sms_text(invitation.item_name, invitation.stage, invitation.nonce)
    if not settings.sms_url:
        log.info("SMS for invitation %s not sent (HCP_SMS_URL unset): %s", invitation.id, text)
        return
    body = json.dumps({"phone": phone, "text": text}, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(settings.sms_url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    # Errors name the gateway, never the phone (the body is not part of them).
    try:
        with urllib.request.urlopen(request, timeout=settings.notify_timeout) as resp:
            resp.read(65536)
    except urllib.error.HTTPError as err:  # it answered, and refused this message
        raise notify.SendError(f"SMS gateway {notify.redact_url(settings.sms_url)}: {err}") from err
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise Unreachable(f"SMS gateway {notify.redact_url(settings.sms_url)}: {err}") from err
