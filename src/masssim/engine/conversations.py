"""What a conversation leads to (DESIGN §1.5): satisfaction, a purchase won or lost, churn, declared taste.

A conversation is **settled** when its outcome is known: its settling answer is over (``answered``), the
customer gave up in a queue or before reaching one (``abandoned``), or the brand never answered it
(``ignored`` by the response policy, ``unroutable``, or dropped by the core) and the customer's patience
ran out. Only true needles (ground truth ``relevant``) have outcomes; a haystack message that was answered
is a false alarm, which costs agent time and nothing else.

For a settled needle with response time ``w`` (start of the settling answer minus arrival; the bot's
time included when a bot escalated), with ``2**(-w / h)`` the decay over a half-life ``h``:

* **satisfied** with probability ``satisfaction_max · 2**(-w / satisfaction_half_life)`` if answered; an
  unanswered needle is never satisfied;
* a true **purchase** intent **converts** with probability ``conversion_max · 2**(-w / conversion_half_life)``
  if answered; unanswered, the purchase is lost (the decay follows the lead-response finding that
  contacting a lead within the hour multiplies the chance of qualifying it; see docs/model.md §13);
* an unanswered true **complaint** makes its author **churn** with probability ``churn_after_unanswered_complaint``
  (a churned customer leaves every channel and buys no more of our brand);
* an answered needle from a customer (not a stranger) **captures declared taste** with probability
  ``declare_share``: the agent learns what the customer likes (``theta + N(0, sigma_decl^2)``).

The coins are drawn when the outcome is settled, in settlement order, from the conversation desk's own
generator, so the same run gives the same outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masssim.model.messages import INTENTS

PURCHASE = INTENTS.index("purchase")
COMPLAINT = INTENTS.index("complaint")


@dataclass(frozen=True)
class OutcomeModel:
    """Parameters of the conversation outcomes (see the module docstring); times in seconds."""

    satisfaction_max: float = 0.85
    satisfaction_half_life_s: float = 4 * 3600.0
    conversion_max: float = 0.3
    conversion_half_life_s: float = 3600.0
    churn_after_unanswered_complaint: float = 0.2
    declare_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("satisfaction_max", "conversion_max", "churn_after_unanswered_complaint", "declare_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if not (self.satisfaction_half_life_s > 0 and self.conversion_half_life_s > 0):
            raise ValueError("half-lives must be positive")


@dataclass
class Outcomes:
    """Outcomes of settled conversations (aligned arrays)."""

    message: np.ndarray  # int64: index of the message in the desk
    satisfied: np.ndarray  # bool
    converted: np.ndarray  # bool
    churned: np.ndarray  # bool
    declared: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.message.shape[0])


def decide(
    model: OutcomeModel,
    message: np.ndarray,
    answered: np.ndarray,
    wait_s: np.ndarray,
    relevant: np.ndarray,
    intent: np.ndarray,
    author: np.ndarray,
    rng: np.random.Generator,
) -> Outcomes:
    """Outcomes of a batch of settled conversations (arrays aligned with ``message``)."""
    n = message.shape[0]
    u = rng.random((4, n))
    w = np.where(answered, np.nan_to_num(wait_s, nan=0.0), 0.0)
    need = relevant & answered
    satisfied = need & (u[0] < model.satisfaction_max * np.exp2(-w / model.satisfaction_half_life_s))
    converted = need & (intent == PURCHASE) & (u[1] < model.conversion_max * np.exp2(-w / model.conversion_half_life_s))
    customer = author >= 0
    churned = relevant & ~answered & (intent == COMPLAINT) & customer & (u[2] < model.churn_after_unanswered_complaint)
    declared = need & customer & (u[3] < model.declare_share)
    return Outcomes(message=message, satisfied=satisfied, converted=converted, churned=churned, declared=declared)
