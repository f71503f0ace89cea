"""Configuration, calendar and vocabulary shared by every part of the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from models.coverage import PROFILE_COVERAGES

CN_TZ = timezone(timedelta(hours=8))
DEFAULT_START = datetime(2026, 3, 1, tzinfo=CN_TZ)

MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
# Local clock = UTC + 8 h; every simulated account lives in China Standard Time.
CN_OFFSET_MS = 8 * MS_PER_HOUR

CHANNELS: tuple[str, ...] = ("mobile", "web", "atm", "counter", "pos", "api", "other")
CH_MOBILE, CH_WEB, CH_ATM, CH_COUNTER, CH_POS, CH_API = range(6)

# Index 0 is home; the rest are destinations of legitimate and fraudulent cross-border money.
COUNTRIES: tuple[str, ...] = (
    "CN",
    "HK",
    "US",
    "GB",
    "AU",
    "CA",
    "JP",
    "SG",
    "DE",
    "TH",
    "MY",
    "KH",
    "MM",
    "PH",
    "LA",
)
LEGIT_ABROAD: tuple[str, ...] = ("HK", "US", "GB", "AU", "CA", "JP", "SG", "DE", "TH", "MY")
FRAUD_ABROAD: tuple[str, ...] = ("KH", "MM", "PH", "LA", "HK", "TH", "MY")

# Memos are optional and shared by legitimate and fraudulent transfers alike, so that a memo
# alone never gives a label away.
MEMOS: tuple[str, ...] = (
    "salary",
    "rent",
    "utilities",
    "allowance",
    "goods",
    "loan repayment",
    "gift",
    "tuition",
    "service fee",
    "deposit",
)
(
    MEMO_SALARY,
    MEMO_RENT,
    MEMO_UTILITIES,
    MEMO_ALLOWANCE,
    MEMO_GOODS,
    MEMO_LOAN,
    MEMO_GIFT,
    MEMO_TUITION,
    MEMO_SERVICE,
    MEMO_DEPOSIT,
) = range(len(MEMOS))

BANKS: tuple[str, ...] = ("ICBC", "CCB", "ABC", "BOC", "BOCOM", "CMB", "PSBC", "CITIC", "SPDB")
# The bank whose view `--profile-coverage own-bank` gives: it holds about a quarter of the
# customers (a bank's own customers are often 10-40 % of the accounts in its stream).
OWN_BANK = BANKS[0]
BANK_SHARES: tuple[float, ...] = (0.25,) + (0.75 / (len(BANKS) - 1),) * (len(BANKS) - 1)

# `PROFILE_COVERAGES` (models.coverage): which accounts the written `accounts.jsonl` profiles:
# every customer, only the own bank's customers, or none (an anti-fraud centre that aggregates
# banks may have no profiles at all).
# Fraudulent share of all transfers: banks see well under 1 %, so the default is near that;
# evaluation needs enough rings, so run more accounts, days or seeds rather than raise it.
DEFAULT_FRAUD_SHARE = 0.001

TYPOLOGIES: dict[str, str] = {
    "mule_chain": "scam victims pay 'two cards' mules that pass the money through 1-3 layers "
    "and cash it out at ATMs or abroad",
    "threshold_fanout": "a collecting mule splits the money at once into many transfers just "
    "under round review thresholds to new payees",
    "fan_in_collection": "many victims pay one young account within hours",
    "cycle": "IBM AML cycle: money goes round a loop of mules and returns to its first mule",
    "scatter_gather": "IBM AML scatter-gather: one mule scatters to intermediates that gather "
    "into one mule",
    "gather_scatter": "IBM AML gather-scatter: many victims gather into a hub that scatters to "
    "many mules",
    "bipartite": "IBM AML bipartite: a set of mules pays another set, many to many",
    "stack": "IBM AML stack: bipartite layers stacked two deep",
    "elderly_tranches": "an elderly victim (65+) pays a new payee in tranches over hours or days",
    "low_and_slow": "a ring keeps every transfer small and spreads them over days",
}


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: the seed fixes every random choice, so equal configs give equal data."""

    seed: int = 7
    accounts: int = 20_000
    days: int = 7
    start: datetime = field(default=DEFAULT_START)
    fraud_share: float = DEFAULT_FRAUD_SHARE
    profile_coverage: str = "all"

    def __post_init__(self) -> None:
        if not 0 <= self.fraud_share < 0.5:
            raise ValueError(f"fraud share must be in [0, 0.5), got {self.fraud_share}")
        if self.profile_coverage not in PROFILE_COVERAGES:
            raise ValueError(
                f"profile coverage must be one of {', '.join(PROFILE_COVERAGES)}, "
                f"got {self.profile_coverage!r}"
            )

    @property
    def start_ms(self) -> int:
        """Start of the simulated window in ms since the epoch."""
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        """End (exclusive) of the simulated window in ms since the epoch."""
        return self.start_ms + self.days * MS_PER_DAY
