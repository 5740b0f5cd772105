"""The knowledge base and ticket bank of ``trajrec/SupportTicket-v0``, and the keyword search over it.

Each ticket lists the documents that answer it and a rubric: the key facts a good answer states
(each as alternative phrasings), phrases it must not contain, and length bounds. The rubric is
data, shared by the default heuristic judge and by any model judge that wants a reference.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Doc:
    """A knowledge-base article."""

    id: str
    title: str
    body: str


@dataclass(frozen=True)
class Ticket:
    """A support ticket and its rubric.

    Attributes:
        id: Stable task id, e.g. ``support-refund-annual``.
        text: The task statement (the customer's message and what to do).
        docs: Ids of the articles that answer the ticket.
        facts: ``(label, alternative phrasings)`` that a good answer states (case-insensitive).
        forbidden: ``(label, phrasings)`` that a good answer must not contain.
        min_chars: Shortest acceptable answer.
        max_chars: Longest acceptable answer.
    """

    id: str
    text: str
    docs: tuple[str, ...]
    facts: tuple[tuple[str, tuple[str, ...]], ...]
    forbidden: tuple[tuple[str, tuple[str, ...]], ...] = ()
    min_chars: int = 60
    max_chars: int = 1200

    def rubric(self) -> dict[str, object]:
        """Return the rubric as plain data (fresh objects every call)."""
        return {
            "docs": list(self.docs),
            "facts": [{"label": label, "any_of": list(alts)} for label, alts in self.facts],
            "forbidden": [{"label": label, "any_of": list(alts)} for label, alts in self.forbidden],
            "min_chars": self.min_chars,
            "max_chars": self.max_chars,
        }


_DOCS = (
    (
        "KB-101",
        "Resetting your password",
        "To reset your password, click 'Forgot password' on the sign-in page and enter your account email. The reset link is valid for 24 hours. If the email does not arrive within 10 minutes, check your spam folder. Support staff will never ask for your password.",
    ),
    (
        "KB-102",
        "Two-factor authentication",
        "Turn on two-factor authentication under Settings > Security, with an authenticator app or SMS. Save your 10 backup codes; each code works once. If you lose your phone, sign in with a backup code and re-enroll two-factor authentication on the new device.",
    ),
    (
        "KB-103",
        "Locked accounts",
        "After 5 failed sign-in attempts an account is locked for 30 minutes. Wait 30 minutes, or reset your password to unlock the account immediately.",
    ),
    (
        "KB-104",
        "Refund policy",
        "Unused annual plans can be refunded in full within 30 days of purchase. Monthly plans are not refunded, but you can cancel at any time and keep access until the end of the billing period. Refunds go back to the original payment method and take 5-10 business days to appear.",
    ),
    (
        "KB-105",
        "Cancelling a subscription",
        "Cancel under Billing > Plan > Cancel subscription. Your plan stays active until the end of the current billing period and you will not be charged again. Your data is kept for 90 days after the plan ends.",
    ),
    (
        "KB-106",
        "Changing your billing date",
        "You can move your billing date once per billing cycle under Billing > Payment schedule. The next invoice is prorated for the days in between.",
    ),
    (
        "KB-107",
        "Downloading invoices",
        "Invoices are under Billing > Invoices as PDF files. An invoice shows your company name and VAT number if you add them under Billing > Details before it is issued. Past invoices cannot be reissued with new details.",
    ),
    (
        "KB-108",
        "Payment methods",
        "We accept Visa, Mastercard, American Express and PayPal. Bank transfer is available for annual plans over 1,000 USD. We do not accept cryptocurrency or cheques.",
    ),
    (
        "KB-109",
        "Failed payments",
        "If a payment fails we retry it after 3 days and again after 7 days. Update your card under Billing > Payment methods. After the third failed attempt the workspace becomes read-only until a payment succeeds; no data is deleted.",
    ),
    (
        "KB-110",
        "Shipping times",
        "Standard shipping takes 3-5 business days within the country. Express shipping takes 1-2 business days and costs 15 USD. Orders placed before 2 pm ship the same day.",
    ),
    (
        "KB-111",
        "International shipping",
        "We ship to 40 countries, including Canada and the UK. International orders take 7-14 business days. Import duties and taxes are paid by the customer on delivery.",
    ),
    (
        "KB-112",
        "Tracking an order",
        "Your tracking number is in the shipping confirmation email and under Orders in your account. Tracking updates can take up to 24 hours to appear after an order ships.",
    ),
    (
        "KB-113",
        "Changing a shipping address",
        "You can change the shipping address until the order ships, under Orders > Edit address. Once an order has shipped the address cannot be changed; contact the carrier to redirect the parcel.",
    ),
    (
        "KB-114",
        "Damaged or wrong items",
        "If an item arrives damaged or wrong, report it within 14 days with a photo under Orders > Report a problem. We send a free replacement or a full refund, and you do not need to return the damaged item.",
    ),
    (
        "KB-115",
        "Returns",
        "Items can be returned within 30 days of delivery if unused and in the original packaging. Print the prepaid return label under Orders > Return. Refunds are issued within 5 business days after we receive the item.",
    ),
    (
        "KB-116",
        "Warranty",
        "All hardware has a 2-year warranty against manufacturing defects. The warranty does not cover accidental damage or water damage. Start a claim under Support > Warranty with your order number.",
    ),
    (
        "KB-117",
        "Changing your email address",
        "Change your account email under Settings > Profile. We send a confirmation link to the new address and the change takes effect after you click it. The link expires after 48 hours.",
    ),
    (
        "KB-118",
        "Deleting your account",
        "Delete your account under Settings > Privacy > Delete account. Deletion becomes permanent after a 14-day grace period, during which you can sign in to cancel it. Cancel any active subscription first.",
    ),
    (
        "KB-119",
        "Exporting your data",
        "Export all your data as a ZIP archive under Settings > Privacy > Export data. Exports are prepared in the background and a download link is emailed within 24 hours. The link is valid for 7 days.",
    ),
    (
        "KB-120",
        "Team seats",
        "Admins add seats under Admin > Members > Invite. Each seat is billed at the plan's per-seat price, prorated for the rest of the billing period. Removing a member frees the seat at the next renewal.",
    ),
    (
        "KB-121",
        "Single sign-on (SSO)",
        "SAML single sign-on is available on the Enterprise plan only. Set it up under Admin > Security > SSO with your identity provider's metadata URL. Okta, Azure AD and Google Workspace are supported.",
    ),
    (
        "KB-122",
        "API rate limits",
        "The API allows 100 requests per minute per token on the Pro plan and 1,000 on Enterprise. Requests over the limit get HTTP 429 with a Retry-After header; wait that many seconds before retrying.",
    ),
    (
        "KB-123",
        "Service status and outages",
        "Current incidents are posted on status.example.com. Subscribe there for email or SMS updates. Credits for outages are given under the SLA on Enterprise plans only.",
    ),
    (
        "KB-124",
        "Student discount",
        "Students get 50% off the Pro plan for one year. Verify with a school email address under Billing > Discounts. The discount renews each year while you remain a student.",
    ),
    (
        "KB-125",
        "Promo codes",
        "Enter promo codes at checkout. Only one code can be used per order, and codes cannot be applied after the order is placed.",
    ),
    (
        "KB-126",
        "Mobile app offline mode",
        "The mobile app keeps the last 30 days of documents available offline. Changes made offline sync automatically when you reconnect.",
    ),
)

DOCS: dict[str, Doc] = {doc_id: Doc(doc_id, title, body) for doc_id, title, body in _DOCS}

_ASK = "Search the knowledge base, then answer the customer. Cite the article you used (e.g. KB-101)."

TICKETS: tuple[Ticket, ...] = tuple(
    Ticket(id=f"support-{slug}", text=f'Customer: "{message}"\n{_ASK}', docs=docs, facts=facts, forbidden=forbidden)
    for slug, message, docs, facts, forbidden in (
        (
            "password-reset",
            "Hi, I forgot my password and the reset email never came. What should I do?",
            ("KB-101",),
            (("check the spam folder", ("spam",)), ("the link is valid for 24 hours", ("24 hours",))),
            (
                (
                    "asks for the password",
                    (
                        "send us your password",
                        "tell us your password",
                        "share your password",
                        "reply with your password",
                    ),
                ),
            ),
        ),
        (
            "locked-account",
            "My account says it is locked after I mistyped my password a few times. How long until I can get back in?",
            ("KB-103",),
            (
                ("locked for 30 minutes", ("30 minutes", "thirty minutes")),
                ("a password reset unlocks it now", ("reset your password", "password reset")),
            ),
            (),
        ),
        (
            "lost-2fa-phone",
            "I lost my phone and can't get my two-factor codes. How do I sign in?",
            ("KB-102",),
            (
                ("sign in with a backup code", ("backup code",)),
                ("re-enroll on the new device", ("re-enroll", "reenroll", "enroll again", "set up two-factor again")),
            ),
            (),
        ),
        (
            "refund-annual",
            "I bought the annual plan 12 days ago and barely used it. Can I get my money back?",
            ("KB-104",),
            (
                ("refundable within 30 days", ("30 days", "30-day")),
                ("to the original payment method", ("original payment method",)),
                ("takes 5-10 business days", ("5-10 business days", "5 to 10 business days")),
            ),
            (),
        ),
        (
            "refund-monthly",
            "Can I get a refund for this month of my monthly plan? I want to stop using it.",
            ("KB-104", "KB-105"),
            (
                ("monthly plans are not refunded", ("not refunded", "no refund", "not refundable", "non-refundable")),
                (
                    "access until the end of the period",
                    ("end of the billing period", "end of the current billing period"),
                ),
            ),
            (),
        ),
        (
            "cancel",
            "How do I cancel my subscription, and what happens to my data?",
            ("KB-105",),
            (("where to cancel", ("billing > plan", "cancel subscription")), ("data kept for 90 days", ("90 days",))),
            (),
        ),
        (
            "invoice-vat",
            "I need our VAT number on my invoices. Where do I add it?",
            ("KB-107",),
            (
                ("add it under Billing > Details", ("billing > details",)),
                (
                    "past invoices are not reissued",
                    ("cannot be reissued", "can't be reissued", "not be reissued", "past invoices"),
                ),
            ),
            (),
        ),
        (
            "pay-crypto",
            "Can I pay with PayPal or bitcoin?",
            ("KB-108",),
            (("PayPal is accepted", ("paypal",)), ("no cryptocurrency", ("cryptocurrency", "crypto"))),
            (),
        ),
        (
            "failed-payment",
            "My card payment failed. Will my workspace be shut down?",
            ("KB-109",),
            (
                ("payment is retried", ("retry", "retried", "try again")),
                ("update the card", ("billing > payment methods", "update your card")),
                ("read-only after the third failure", ("read-only", "read only")),
            ),
            (),
        ),
        (
            "shipping-time",
            "I ordered yesterday afternoon. When will my package arrive with standard shipping?",
            ("KB-110",),
            (("3-5 business days", ("3-5 business days", "3 to 5 business days")), ("express is faster", ("express",))),
            (),
        ),
        (
            "international",
            "Do you ship to Canada, and will I have to pay customs?",
            ("KB-111",),
            (
                ("7-14 business days", ("7-14 business days", "7 to 14 business days")),
                ("the customer pays duties", ("duties",)),
            ),
            (),
        ),
        (
            "tracking",
            "Where can I find my tracking number? The order shipped this morning but tracking shows nothing.",
            ("KB-112",),
            (("in the confirmation email", ("confirmation email",)), ("updates take up to 24 hours", ("24 hours",))),
            (),
        ),
        (
            "address-shipped",
            "I typed the wrong street in my address. The order already shipped - can you change it?",
            ("KB-113",),
            (
                (
                    "cannot change it after shipping",
                    ("cannot be changed", "can't be changed", "can no longer be changed", "not possible to change"),
                ),
                ("contact the carrier", ("carrier",)),
            ),
            (),
        ),
        (
            "damaged-item",
            "My mug arrived broken. Do I need to send it back?",
            ("KB-114",),
            (
                ("report it with a photo", ("photo",)),
                ("no need to return it", ("do not need to return", "don't need to return", "no need to return")),
                ("replacement or refund", ("replacement",)),
            ),
            (),
        ),
        (
            "return-shoes",
            "I want to return shoes I didn't wear. How do I do that?",
            ("KB-115",),
            (
                ("within 30 days", ("30 days",)),
                ("prepaid return label", ("return label",)),
                ("original packaging", ("original packaging",)),
            ),
            (),
        ),
        (
            "warranty-water",
            "My headphones stopped working after I dropped them in the sink. Is that covered by the warranty?",
            ("KB-116",),
            (
                ("water damage is not covered", ("not covered", "does not cover", "doesn't cover", "isn't covered")),
                ("2-year warranty for defects", ("2-year", "two-year", "2 year")),
            ),
            (),
        ),
        (
            "change-email",
            "I changed my email in settings but it still shows the old one.",
            ("KB-117",),
            (
                ("click the confirmation link", ("confirmation link",)),
                ("the link expires after 48 hours", ("48 hours",)),
            ),
            (),
        ),
        (
            "delete-account",
            "Please delete my account and all my data.",
            ("KB-118", "KB-119"),
            (
                ("Settings > Privacy", ("settings > privacy",)),
                ("14-day grace period", ("14-day", "14 days")),
                ("cancel the subscription first", ("subscription",)),
            ),
            (),
        ),
        (
            "export-data",
            "How can I get a copy of all my data?",
            ("KB-119",),
            (
                ("ZIP export", ("zip",)),
                ("link emailed within 24 hours", ("24 hours",)),
                ("link valid for 7 days", ("7 days",)),
            ),
            (),
        ),
        (
            "team-seats",
            "We hired two people. How do I add them and how will we be billed?",
            ("KB-120",),
            (
                ("invite under Admin > Members", ("admin > members", "invite")),
                ("prorated billing", ("prorated", "pro-rated")),
            ),
            (),
        ),
        (
            "sso-pro",
            "Can we use Okta single sign-on on the Pro plan?",
            ("KB-121",),
            (("Enterprise plan only", ("enterprise",)), ("Okta is supported", ("okta",))),
            (),
        ),
        (
            "rate-limit",
            "Our integration gets HTTP 429 errors. What's the limit?",
            ("KB-122",),
            (("100 requests per minute on Pro", ("100 requests",)), ("honour Retry-After", ("retry-after",))),
            (),
        ),
        (
            "student",
            "I'm a student. Is there a discount?",
            ("KB-124",),
            (("50% off Pro", ("50%", "50 percent", "half price")), ("verify with a school email", ("school email",))),
            (),
        ),
        (
            "promo-late",
            "I forgot to use my promo code. Can you apply it to the order I placed yesterday?",
            ("KB-125",),
            (
                ("cannot be applied after ordering", ("cannot be applied", "can't be applied", "after the order")),
                ("one code per order", ("one code",)),
            ),
            (),
        ),
    )
)

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    (
        "a an and are as at be but by can do does for from get how i if in is it its my of on or our the there "
        "this to was we what when where will with you your"
    ).split()
)


def tokens(text: str) -> list[str]:
    """Lower-case words without stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _doc_tokens() -> dict[str, Counter[str]]:
    # Title words count double: a title says what an article is about.
    return {d.id: Counter(tokens(d.body)) + Counter(tokens(d.title) * 2) for d in DOCS.values()}


_DOC_TOKENS = _doc_tokens()
_IDF = {
    word: math.log(1 + len(DOCS) / sum(word in counts for counts in _DOC_TOKENS.values()))
    for word in {w for counts in _DOC_TOKENS.values() for w in counts}
}


def search(query: str, limit: int = 5) -> list[str]:
    """Return the ids of the best-matching articles, best first (ties broken by id).

    >>> search("refund annual plan")[0]
    'KB-104'
    """
    # Sorted, not a set's order: float sums depend on the order, and set order on the hash seed.
    words = sorted(set(tokens(query)))
    scored = []
    for doc_id, counts in _DOC_TOKENS.items():
        score = sum((1 + math.log(counts[w])) * _IDF[w] for w in words if counts[w])
        if score > 0:
            scored.append((-round(score, 9), doc_id))
    return [doc_id for _, doc_id in sorted(scored)[:limit]]
