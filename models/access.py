"""Who may do what: every role set and access rule, defined once for all the layers.

The command table (`handlers.policy`), the domain operations (`models.progress`,
`models.meetings`, `models.returns`) and the reminder planner (`scheduler.due`) all read
these, so a rule changed here changes everywhere it applies.
"""

from __future__ import annotations

from csp_bot.models.enums import Role

EVERYONE = frozenset(Role)
# May update any action.
UPDATE_ANY = frozenset({Role.ADMIN, Role.CHAIR})
# May update the actions their own organisation leads.
UPDATE_OWN = frozenset({Role.PARTNER})
# Those who may change progress at all (and so /update, /cancel, /undo, snoozing a check-in).
UPDATERS = UPDATE_ANY | UPDATE_OWN
# The board's own summaries and papers: the coordinator, the chair and board members.
BOARD = frozenset({Role.ADMIN, Role.CHAIR, Role.BOARD})
# Schedule meetings, record funding decisions, and see who has replied to a meeting.
ORGANISERS = frozenset({Role.ADMIN, Role.CHAIR})
# Managing the membership (/members, deactivating) is the coordinator's alone.
COORDINATOR = frozenset({Role.ADMIN})
# Funding figures are for the partners who pay them and the board, not observers.
FUNDERS = EVERYONE - {Role.OBSERVER}
# Invited to board meetings (and so reminded of them, asked to reply, counted for quorum).
INVITED = frozenset({Role.ADMIN, Role.CHAIR, Role.BOARD})
# Told which returns are missing before a meeting, and sent the weekly digest.
CHAIRS = frozenset({Role.ADMIN, Role.CHAIR})
# Asked for updates on their organisation's actions that no member owns.
ORGANISATION_CONTACTS = frozenset({Role.PARTNER})


def may_update(role: Role, *, organisation_id: int, lead_organisation_id: int) -> bool:
    """Whether a member with `role` in `organisation_id` may update an action it leads."""
    if role in UPDATE_ANY:
        return True
    return role in UPDATE_OWN and organisation_id == lead_organisation_id


def is_invited(role: Role) -> bool:
    """Whether a member with `role` is invited to board meetings."""
    return role in INVITED


def may_supply(role: Role, *, organisation_id: int, supplier_organisation_id: int) -> bool:
    """Whether a member may send figures for a measure: the rule of updating an action,
    with the measure's supplier in place of the action's lead."""
    return may_update(
        role, organisation_id=organisation_id, lead_organisation_id=supplier_organisation_id
    )
