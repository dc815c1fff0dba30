"""The `reports` document and its figures: its states, and every metric field with its label,
unit and definition in English and Russian (SPEC §4, §4.1, §4.2).

The gateway creates a report (`pending`); ingest moves it to `processing` when it takes a file,
or to `failed` when it rejects one; analytics writes its figures on every recompute and `success`
once every source is final (`shared.source_reports`). The links table (`report_links`, one
document per report, written by analytics only) has its own entry fields, `LINK_FIELDS`.

This is the one list of figures: the gateway's response model, the export, the CLI and analytics
take their names and words from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final, Literal

ReportStatus = Literal["pending", "processing", "success", "failed"]
REPORT_PENDING: Final[ReportStatus] = "pending"
REPORT_PROCESSING: Final[ReportStatus] = "processing"
REPORT_SUCCESS: Final[ReportStatus] = "success"
REPORT_FAILED: Final[ReportStatus] = "failed"
# A report in one of these states changes no more until new input arrives (what clients wait for).
FINAL_REPORT_STATES: Final[frozenset[ReportStatus]] = frozenset({REPORT_SUCCESS, REPORT_FAILED})

# count: an int; money: in the report's currency; percent: already × 100 (12.5 means 12.5 %);
# days: a mean duration in days; money_by_currency: {ISO code: amount in that currency};
# text: a list of sentences; link: an invite link (str or null).
Kind = Literal["count", "money", "percent", "days", "money_by_currency", "text", "link"]


@dataclass(frozen=True)
class Unit:
    en: str
    ru: str


UNITS: Final[Mapping[Kind, Unit]] = {
    "count": Unit("", ""),
    "money": Unit("report currency", "валюта отчёта"),
    "percent": Unit("%", "%"),
    "days": Unit("days", "дни"),
    "money_by_currency": Unit("each currency", "по валютам"),
    "text": Unit("", ""),
    "link": Unit("", ""),
}


@dataclass(frozen=True)
class MetricField:
    """One figure of a report (or of a links-table entry)."""

    key: str
    kind: Kind
    label_en: str
    label_ru: str
    definition_en: str
    definition_ru: str

    @property
    def unit(self) -> Unit:
        return UNITS[self.kind]


def _m(key: str, kind: Kind, label_en: str, label_ru: str, definition_en: str, definition_ru: str) -> MetricField:
    return MetricField(key, kind, label_en, label_ru, definition_en, definition_ru)


# The seed's figures (SPEC §4), in the order a reader meets them: volume, money, costs,
# conversion, timing, audience.
SEED_METRICS: Final[tuple[MetricField, ...]] = (
    _m("subs", "count", "Subscribers", "Подписчики",
       "Number of distinct users (user_id) across the Excel sources",
       "Число уникальных пользователей (user_id) во всех Excel-источниках"),
    _m("funnel", "count", "Funnel entries", "Входы в воронку", "Number of rows with status funnel",
       "Число строк со статусом funnel (воронка)"),
    _m("leads", "count", "Leads", "Лиды", "Number of rows with status lead", "Число строк со статусом lead (лид)"),
    _m("sales", "count", "Sales", "Продажи", "Number of rows with status sale",
       "Число строк со статусом sale (продажа)"),
    _m("profit", "money", "Profit", "Выручка",
       "Sum of purchase_amount over sale rows of all sources, receipts included",
       "Сумма purchase_amount по строкам-продажам всех источников, включая чеки ОФД"),
    _m("romi", "percent", "ROMI", "ROMI", "(profit − budget) / budget × 100", "(выручка − бюджет) / бюджет × 100"),
    _m("cpc", "money", "Cost per subscriber (CPC)", "Цена подписчика (CPC)", "budget / subs",
       "бюджет / число подписчиков"),
    _m("cpf", "money", "Cost per funnel entry (CPF)", "Цена входа в воронку (CPF)", "budget / funnel",
       "бюджет / число входов в воронку"),
    _m("cpl", "money", "Cost per lead (CPL)", "Цена лида (CPL)", "budget / leads", "бюджет / число лидов"),
    _m("cac", "money", "Customer acquisition cost (CAC)", "Цена покупателя (CAC)",
       "budget / number of distinct users with at least one sale",
       "бюджет / число уникальных пользователей хотя бы с одной продажей"),
    _m("cr_funnel", "percent", "Conversion to funnel", "Конверсия в воронку", "funnel / subs × 100",
       "воронка / подписчики × 100"),
    _m("cr_leads", "percent", "Conversion to leads", "Конверсия в лиды", "leads / subs × 100",
       "лиды / подписчики × 100"),
    _m("cr_sales", "percent", "Conversion to sales", "Конверсия в продажи", "sales / subs × 100",
       "продажи / подписчики × 100"),
    _m("avg_funnel", "days", "Average days to funnel", "Среднее время до воронки",
       "Mean action_period (action_date − sub_date, days) of funnel rows",
       "Среднее action_period (дата действия − дата подписки, дни) строк воронки"),
    _m("avg_lead", "days", "Average days to lead", "Среднее время до лида", "Mean action_period of lead rows",
       "Среднее action_period строк-лидов"),
    _m("avg_sale", "days", "Average days to sale", "Среднее время до продажи", "Mean action_period of sale rows",
       "Среднее action_period строк-продаж"),
    _m("premium_percent", "percent", "Premium users", "Пользователи Premium",
       "Share of users with Telegram Premium × 100", "Доля пользователей с Telegram Premium × 100"),
    _m("username_percent", "percent", "Users with username", "Пользователи с username",
       "Share of users with a non-empty username × 100", "Доля пользователей с непустым username × 100"),
)  # fmt: skip

# Issue 16's figures (SPEC §4.1, §4.2).
CURRENCY_METRICS: Final[tuple[MetricField, ...]] = (
    _m("profit_by_currency", "money_by_currency", "Profit by currency", "Выручка по валютам",
       "Sum of purchase_amount over sale rows, per currency, in that currency (every currency present)",
       "Сумма purchase_amount по строкам-продажам в каждой валюте, в этой валюте (все встретившиеся валюты)"),
    _m("warnings", "text", "Warnings", "Предупреждения",
       "What the figures leave out, e.g. sale rows in a currency without an exchange rate",
       "Что не вошло в показатели, например продажи в валюте без курса"),
)  # fmt: skip
RETENTION_METRICS: Final[tuple[MetricField, ...]] = (
    _m("unsubs", "count", "Unsubscribed", "Отписались", "Users with an unsub_date", "Пользователи с датой отписки"),
    _m("net_subs", "count", "Subscribers who stayed", "Оставшиеся подписчики", "subs − unsubs",
       "подписчики − отписавшиеся"),
    _m("unsub_percent", "percent", "Unsubscribed share", "Доля отписавшихся", "unsubs / subs × 100",
       "отписавшиеся / подписчики × 100"),
    _m("cpc_net", "money", "Cost per subscriber who stayed", "Цена оставшегося подписчика", "budget / net_subs",
       "бюджет / оставшиеся подписчики"),
    _m("retention_d1", "percent", "Retention, day 1", "Удержание, 1-й день",
       "Of users subscribed at least 1 day before as_of, share still subscribed 1 day after sub_date × 100",
       "Из подписавшихся не позже чем за 1 день до as_of — доля не отписавшихся в первый день × 100"),
    _m("retention_d7", "percent", "Retention, day 7", "Удержание, 7-й день", "The same for 7 days",
       "То же для 7 дней"),
    _m("retention_d30", "percent", "Retention, day 30", "Удержание, 30-й день", "The same for 30 days",
       "То же для 30 дней"),
)  # fmt: skip

# The figures that are one number each (what the export's Summary and the CLI's table list).
NUMBER_METRICS: Final[tuple[MetricField, ...]] = SEED_METRICS + RETENTION_METRICS
# Every figure analytics writes on a report, in the order a reader meets them.
REPORT_METRICS: Final[tuple[MetricField, ...]] = NUMBER_METRICS + CURRENCY_METRICS
REPORT_METRIC_NAMES: Final[tuple[str, ...]] = tuple(m.key for m in REPORT_METRICS)
NUMBER_METRIC_NAMES: Final[tuple[str, ...]] = tuple(m.key for m in NUMBER_METRICS)
SEED_METRIC_NAMES: Final[tuple[str, ...]] = tuple(m.key for m in SEED_METRICS)
# The counts among them (ints; every other figure is Decimal or null).
COUNT_METRIC_NAMES: Final[frozenset[str]] = frozenset(m.key for m in REPORT_METRICS if m.kind == "count")

_BY_KEY: Final[Mapping[str, MetricField]] = {m.key: m for m in REPORT_METRICS}


def _link(key: str, **override: str) -> MetricField:
    """A link entry's field: the report's figure of that name, restricted to the link's users."""
    base = _BY_KEY[key]
    return MetricField(
        key,
        base.kind,
        base.label_en,
        base.label_ru,
        override.get("en", base.definition_en + ", for this link's users"),
        override.get("ru", base.definition_ru + ", для пользователей этой ссылки"),
    )


# One entry of the links table (`report_links.links`, SPEC §4.2), exactly these fields in this order.
LINK_FIELDS: Final[tuple[MetricField, ...]] = (
    _m("invite_link", "link", "Invite link", "Пригласительная ссылка",
       "The Telegram invite link (null: rows without one)", "Пригласительная ссылка Telegram (null — строки без неё)"),
    _link("subs"),
    _link("unsubs"),
    _link("net_subs"),
    _link("funnel"),
    _link("leads"),
    _link("sales"),
    _m("buyers", "count", "Buyers", "Покупатели", "Distinct users with at least one sale",
       "Уникальные пользователи хотя бы с одной продажей"),
    _link("profit"),
    _m("cost", "money", "Placement cost", "Стоимость размещения",
       "What the seller paid for this placement (null when not set)",
       "Сколько продавец заплатил за это размещение (null, если не задано)"),
    _link("romi", en="(profit − cost) / cost × 100", ru="(выручка − стоимость) / стоимость × 100"),
    _link("cpc", en="cost / subs", ru="стоимость / число подписчиков"),
    _link("cpc_net", en="cost / net_subs", ru="стоимость / число оставшихся подписчиков"),
    _link("cac", en="cost / buyers", ru="стоимость / число покупателей"),
    _link("cr_sales"),
    _link("retention_d1"),
    _link("retention_d7"),
    _link("retention_d30"),
)  # fmt: skip
LINK_FIELD_NAMES: Final[tuple[str, ...]] = tuple(f.key for f in LINK_FIELDS)
# The entry fields that always hold a value: every link has its counts and its profit (0 without a
# sale); the cost and the figures divided by it or by a count may be null.
LINK_FIELDS_ALWAYS_SET: Final[frozenset[str]] = frozenset(
    f.key for f in LINK_FIELDS if f.kind == "count" or f.key == "profit"
)


# --- reading a figure -----------------------------------------------------------------------------

_CENT: Final = Decimal("0.01")


def to_number(value: object) -> int | Decimal | float | None:
    """A JSON/BSON/Python number as a number; None for anything else (text that is no number too)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return value
    to_decimal = getattr(value, "to_decimal", None)  # bson.Decimal128 without importing bson here
    if callable(to_decimal):
        result = to_decimal()
        return result if isinstance(result, Decimal) else None
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def metric_value(report: Mapping[str, object], metric: MetricField) -> int | Decimal | None:
    """A figure as the API shows it: counts as integers, everything else half-up to 2 decimals
    (stored values may carry more digits; the API rounds once, at the end)."""
    number = to_number(report.get(metric.key))
    if number is None:
        return None
    if metric.kind == "count":
        return int(number)
    return Decimal(str(number)).quantize(_CENT, rounding=ROUND_HALF_UP)
