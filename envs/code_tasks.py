"""The task bank of ``trajrec/CodeRepair-v0``: small Python modules, their unittest suites, and bugs.

Each of the eight projects below is correct as written; a task takes one project and swaps one
line for a buggy version. Every bug also has a *decoy*: a plausible but wrong fix, used by the
scripted agent and by the tests that prove each task's tests tell a fix from a decoy. Two bugs
(in ``search.py``) turn a loop infinite, so those tasks start with a test run that times out.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CodeTask:
    """One repair task.

    Attributes:
        id: Stable task id, e.g. ``code-stats-1``.
        text: The task statement shown to the agent.
        files: The starting files (path -> text): the buggy module and its tests.
        module: Path of the module with the bug.
        tests: Path of the test module (run in its original form on submit).
        line: 1-based line number of the bug.
        buggy: The buggy line.
        fixed: The correct line.
        decoy: A plausible wrong fix for that line.
    """

    id: str
    text: str
    files: dict[str, str]
    module: str
    tests: str
    line: int
    buggy: str
    fixed: str
    decoy: str


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# (name, module source, test source, bugs); each bug is (symptom, correct line, buggy line, decoy line)
# with lines given without indentation: the indentation of the correct line is reused.
_PROJECTS: tuple[tuple[str, str, str, tuple[tuple[str, str, str, str], ...]], ...] = (
    (
        "stats",
        _src(
            '''
            """Small statistics helpers."""


            def mean(values):
                """Return the arithmetic mean of a non-empty list."""
                if not values:
                    raise ValueError("mean of empty list")
                return sum(values) / len(values)


            def median(values):
                """Return the median of a non-empty list."""
                if not values:
                    raise ValueError("median of empty list")
                ordered = sorted(values)
                mid = len(ordered) // 2
                if len(ordered) % 2 == 1:
                    return ordered[mid]
                return (ordered[mid - 1] + ordered[mid]) / 2


            def variance(values):
                """Return the population variance of a non-empty list."""
                m = mean(values)
                return sum((v - m) ** 2 for v in values) / len(values)
            '''
        ),
        _src(
            """
            import unittest

            from stats import mean, median, variance


            class TestMean(unittest.TestCase):
                def test_integers(self):
                    self.assertEqual(mean([1, 2, 3, 4]), 2.5)

                def test_single(self):
                    self.assertEqual(mean([7]), 7)

                def test_empty(self):
                    with self.assertRaises(ValueError):
                        mean([])


            class TestMedian(unittest.TestCase):
                def test_odd(self):
                    self.assertEqual(median([5, 1, 3]), 3)

                def test_even(self):
                    self.assertEqual(median([4, 1, 3, 2]), 2.5)

                def test_pair(self):
                    self.assertEqual(median([1, 2]), 1.5)


            class TestVariance(unittest.TestCase):
                def test_constant(self):
                    self.assertEqual(variance([3, 3, 3]), 0)

                def test_spread(self):
                    self.assertEqual(variance([1, 3]), 1)


            if __name__ == "__main__":
                unittest.main()
            """
        ),
        (
            (
                "mean() gives wrong results and crashes on single-element lists.",
                "return sum(values) / len(values)",
                "return sum(values) / (len(values) - 1)",
                "return sum(values) // len(values)",
            ),
            (
                "median() is wrong for lists of odd length.",
                "if len(ordered) % 2 == 1:",
                "if len(ordered) % 2 == 0:",
                "if len(ordered) > 2:",
            ),
            (
                "median() crashes on lists of even length.",
                "return (ordered[mid - 1] + ordered[mid]) / 2",
                "return (ordered[mid] + ordered[mid + 1]) / 2",
                "return (ordered[mid - 1] + ordered[mid]) // 2",
            ),
        ),
    ),
    (
        "textutils",
        _src(
            '''
            """Text helpers."""


            def word_count(text):
                """Count whitespace-separated words."""
                return len(text.split())


            def capitalize_words(text):
                """Capitalize the first letter of every word."""
                return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


            def is_palindrome(text):
                """Return True if text reads the same backwards, ignoring case, spaces and punctuation."""
                cleaned = "".join(ch.lower() for ch in text if ch.isalnum())
                return cleaned == cleaned[::-1]


            def truncate(text, limit):
                """Shorten text to at most limit characters, ending with '...' when cut."""
                if len(text) <= limit:
                    return text
                return text[: limit - 3] + "..."
            '''
        ),
        _src(
            """
            import unittest

            from textutils import capitalize_words, is_palindrome, truncate, word_count


            class TestWords(unittest.TestCase):
                def test_count_extra_spaces(self):
                    self.assertEqual(word_count("  hello   world "), 2)

                def test_count_empty(self):
                    self.assertEqual(word_count(""), 0)

                def test_capitalize(self):
                    self.assertEqual(capitalize_words("hello big world"), "Hello Big World")


            class TestPalindrome(unittest.TestCase):
                def test_phrase(self):
                    self.assertTrue(is_palindrome("Never odd or even"))

                def test_not_palindrome(self):
                    self.assertFalse(is_palindrome("python"))


            class TestTruncate(unittest.TestCase):
                def test_exact_fit(self):
                    self.assertEqual(truncate("hello", 5), "hello")

                def test_cut(self):
                    self.assertEqual(truncate("hello world", 8), "hello...")
            """
        ),
        (
            (
                "word_count() miscounts text with repeated spaces.",
                "return len(text.split())",
                'return len(text.split(" "))',
                'return text.count(" ") + 1',
            ),
            (
                "is_palindrome() rejects palindromes with capital letters.",
                'cleaned = "".join(ch.lower() for ch in text if ch.isalnum())',
                'cleaned = "".join(ch for ch in text if ch.isalnum())',
                "cleaned = text.lower()",
            ),
            (
                "truncate() cuts text that already fits.",
                "if len(text) <= limit:",
                "if len(text) < limit:",
                "if len(text) <= limit + 3:",
            ),
        ),
    ),
    (
        "listops",
        _src(
            '''
            """List helpers."""


            def chunk(items, size):
                """Split items into lists of at most size elements."""
                if size < 1:
                    raise ValueError("size must be at least 1")
                return [items[i : i + size] for i in range(0, len(items), size)]


            def flatten(nested):
                """Flatten one level of nesting."""
                result = []
                for group in nested:
                    result.extend(group)
                return result


            def dedupe(items):
                """Remove duplicates, keeping the order of first occurrences."""
                seen = set()
                result = []
                for item in items:
                    if item not in seen:
                        seen.add(item)
                        result.append(item)
                return result


            def rotate(items, steps):
                """Rotate items to the left by steps positions."""
                if not items:
                    return []
                steps %= len(items)
                return items[steps:] + items[:steps]
            '''
        ),
        _src(
            """
            import unittest

            from listops import chunk, dedupe, flatten, rotate


            class TestChunk(unittest.TestCase):
                def test_even(self):
                    self.assertEqual(chunk([1, 2, 3, 4], 2), [[1, 2], [3, 4]])

                def test_remainder(self):
                    self.assertEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]])

                def test_bad_size(self):
                    with self.assertRaises(ValueError):
                        chunk([1], 0)


            class TestOthers(unittest.TestCase):
                def test_flatten(self):
                    self.assertEqual(flatten([[1], [2, 3], []]), [1, 2, 3])

                def test_dedupe(self):
                    self.assertEqual(dedupe([3, 1, 3, 2, 1]), [3, 1, 2])

                def test_rotate(self):
                    self.assertEqual(rotate([1, 2, 3, 4], 1), [2, 3, 4, 1])

                def test_rotate_wraps(self):
                    self.assertEqual(rotate([1, 2, 3], 5), [3, 1, 2])

                def test_rotate_empty(self):
                    self.assertEqual(rotate([], 3), [])
            """
        ),
        (
            (
                "chunk() drops the last element of odd-length lists.",
                "return [items[i : i + size] for i in range(0, len(items), size)]",
                "return [items[i : i + size] for i in range(0, len(items) - 1, size)]",
                "return [items[i : i + size] for i in range(1, len(items), size)]",
            ),
            (
                "flatten() returns the groups instead of their elements.",
                "result.extend(group)",
                "result.append(group)",
                "result += [group]",
            ),
            (
                "rotate() is wrong when steps is larger than the list.",
                "steps %= len(items)",
                "steps %= len(items) - 1",
                "steps = min(steps, len(items))",
            ),
        ),
    ),
    (
        "search",
        _src(
            '''
            """Searching sorted lists."""


            def bisect_left(items, target):
                """Return the first index where target could be inserted keeping items sorted."""
                lo, hi = 0, len(items)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if items[mid] < target:
                        lo = mid + 1
                    else:
                        hi = mid
                return lo


            def contains(items, target):
                """Return True if the sorted list items contains target."""
                index = bisect_left(items, target)
                return index < len(items) and items[index] == target


            def count_less(items, target):
                """Count the elements of the sorted list items that are smaller than target."""
                return bisect_left(items, target)
            '''
        ),
        _src(
            """
            import unittest

            from search import bisect_left, contains, count_less


            class TestBisect(unittest.TestCase):
                def test_middle(self):
                    self.assertEqual(bisect_left([1, 2, 3, 4, 5], 3), 2)

                def test_past_end(self):
                    self.assertEqual(bisect_left([1, 3], 5), 2)

                def test_empty(self):
                    self.assertEqual(bisect_left([], 1), 0)


            class TestContains(unittest.TestCase):
                def test_present(self):
                    self.assertTrue(contains([1, 2, 4], 4))

                def test_absent_large(self):
                    self.assertFalse(contains([1, 2], 5))

                def test_count_less(self):
                    self.assertEqual(count_less([1, 2, 2, 3], 2), 1)
            """
        ),
        (
            (
                "bisect_left() never returns for some inputs (the tests hang).",
                "lo = mid + 1",
                "lo = mid",
                "lo = mid + 2",
            ),
            (
                "contains() crashes when the target is larger than every element.",
                "return index < len(items) and items[index] == target",
                "return items[index] == target",
                "return index <= len(items) and items[index] == target",
            ),
            (
                "bisect_left() hangs or crashes when the target is present (the tests hang).",
                "while lo < hi:",
                "while lo <= hi:",
                "while lo < hi - 1:",
            ),
        ),
    ),
    (
        "bank",
        _src(
            '''
            """A minimal bank account."""


            class InsufficientFunds(Exception):
                """Raised when a withdrawal exceeds the balance."""


            class Account:
                """An account with a balance in cents."""

                def __init__(self, owner, balance=0):
                    if balance < 0:
                        raise ValueError("opening balance cannot be negative")
                    self.owner = owner
                    self.balance = balance
                    self.history = []

                def deposit(self, amount):
                    """Add amount (positive cents) to the balance."""
                    if amount <= 0:
                        raise ValueError("deposit must be positive")
                    self.balance += amount
                    self.history.append(("deposit", amount))

                def withdraw(self, amount):
                    """Remove amount from the balance, refusing overdrafts."""
                    if amount <= 0:
                        raise ValueError("withdrawal must be positive")
                    if amount > self.balance:
                        raise InsufficientFunds(f"balance {self.balance} < {amount}")
                    self.balance -= amount
                    self.history.append(("withdraw", amount))

                def transfer(self, other, amount):
                    """Move amount from this account to other."""
                    self.withdraw(amount)
                    other.deposit(amount)
            '''
        ),
        _src(
            """
            import unittest

            from bank import Account, InsufficientFunds


            class TestAccount(unittest.TestCase):
                def test_deposit(self):
                    acct = Account("ana")
                    acct.deposit(500)
                    self.assertEqual(acct.balance, 500)

                def test_negative_deposit(self):
                    with self.assertRaises(ValueError):
                        Account("ana").deposit(-5)

                def test_withdraw_everything(self):
                    acct = Account("ana", 300)
                    acct.withdraw(300)
                    self.assertEqual(acct.balance, 0)

                def test_overdraft(self):
                    with self.assertRaises(InsufficientFunds):
                        Account("ana", 100).withdraw(101)

                def test_transfer(self):
                    a, b = Account("a", 1000), Account("b")
                    a.transfer(b, 400)
                    self.assertEqual((a.balance, b.balance), (600, 400))

                def test_history(self):
                    acct = Account("ana")
                    acct.deposit(500)
                    acct.deposit(250)
                    acct.withdraw(100)
                    self.assertEqual(acct.history, [("deposit", 500), ("deposit", 250), ("withdraw", 100)])
            """
        ),
        (
            (
                "withdraw() refuses to empty an account completely.",
                "if amount > self.balance:",
                "if amount >= self.balance:",
                "if amount > self.balance - 1:",
            ),
            (
                "transfer() fails with 'deposit must be positive'.",
                "other.deposit(amount)",
                "other.deposit(-amount)",
                "self.deposit(amount)",
            ),
            (
                "The deposit history records the wrong amounts.",
                'self.history.append(("deposit", amount))',
                'self.history.append(("deposit", self.balance))',
                'self.history.append(("deposit", -amount))',
            ),
        ),
    ),
    (
        "dates",
        _src(
            '''
            """Calendar helpers."""

            MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


            def is_leap_year(year):
                """Return True for Gregorian leap years."""
                return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


            def days_in_month(year, month):
                """Return the number of days in month (1-12) of year."""
                if not 1 <= month <= 12:
                    raise ValueError(f"month must be 1-12, got {month}")
                if month == 2 and is_leap_year(year):
                    return 29
                return MONTH_DAYS[month - 1]


            def day_of_year(year, month, day):
                """Return the 1-based ordinal day within the year."""
                total = day
                for m in range(1, month):
                    total += days_in_month(year, m)
                return total
            '''
        ),
        _src(
            """
            import unittest

            from dates import day_of_year, days_in_month, is_leap_year


            class TestLeap(unittest.TestCase):
                def test_common_leap(self):
                    self.assertTrue(is_leap_year(2024))

                def test_century(self):
                    self.assertFalse(is_leap_year(1900))

                def test_four_centuries(self):
                    self.assertTrue(is_leap_year(2000))


            class TestMonths(unittest.TestCase):
                def test_february(self):
                    self.assertEqual(days_in_month(2024, 2), 29)

                def test_december(self):
                    self.assertEqual(days_in_month(2023, 12), 31)

                def test_april(self):
                    self.assertEqual(days_in_month(2023, 4), 30)

                def test_bad_month(self):
                    with self.assertRaises(ValueError):
                        days_in_month(2023, 13)


            class TestDayOfYear(unittest.TestCase):
                def test_first(self):
                    self.assertEqual(day_of_year(2023, 1, 1), 1)

                def test_march_leap(self):
                    self.assertEqual(day_of_year(2024, 3, 1), 61)

                def test_last(self):
                    self.assertEqual(day_of_year(2023, 12, 31), 365)
            """
        ),
        (
            (
                "is_leap_year() says 2000 was not a leap year.",
                "return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
                "return year % 4 == 0 and year % 100 != 0",
                "return year % 4 == 0",
            ),
            (
                "days_in_month() is off by a month and crashes for December.",
                "return MONTH_DAYS[month - 1]",
                "return MONTH_DAYS[month]",
                "return MONTH_DAYS[month % 12]",
            ),
            (
                "day_of_year() counts one month too many.",
                "for m in range(1, month):",
                "for m in range(1, month + 1):",
                "for m in range(0, month):",
            ),
        ),
    ),
    (
        "roman",
        _src(
            '''
            """Roman numerals."""

            NUMERALS = [
                (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"),
                (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
            ]
            VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


            def to_roman(number):
                """Convert 1..3999 to a Roman numeral."""
                if not 0 < number < 4000:
                    raise ValueError(f"out of range: {number}")
                parts = []
                for value, symbol in NUMERALS:
                    while number >= value:
                        parts.append(symbol)
                        number -= value
                return "".join(parts)


            def from_roman(text):
                """Convert a Roman numeral back to an integer."""
                total = 0
                for i, ch in enumerate(text):
                    value = VALUES[ch]
                    if i + 1 < len(text) and VALUES[text[i + 1]] > value:
                        total -= value
                    else:
                        total += value
                return total
            '''
        ),
        _src(
            """
            import unittest

            from roman import from_roman, to_roman


            class TestToRoman(unittest.TestCase):
                def test_one(self):
                    self.assertEqual(to_roman(1), "I")

                def test_four(self):
                    self.assertEqual(to_roman(4), "IV")

                def test_year(self):
                    self.assertEqual(to_roman(1994), "MCMXCIV")

                def test_out_of_range(self):
                    with self.assertRaises(ValueError):
                        to_roman(0)


            class TestFromRoman(unittest.TestCase):
                def test_year(self):
                    self.assertEqual(from_roman("MCMXCIV"), 1994)

                def test_nine(self):
                    self.assertEqual(from_roman("IX"), 9)

                def test_repeats(self):
                    self.assertEqual(from_roman("III"), 3)

                def test_round_trip(self):
                    for n in range(1, 400):
                        self.assertEqual(from_roman(to_roman(n)), n)
            """
        ),
        (
            (
                "to_roman() returns an empty string for 1.",
                "while number >= value:",
                "while number > value:",
                "if number >= value:",
            ),
            (
                "from_roman() gets repeated numerals like 'III' wrong.",
                "if i + 1 < len(text) and VALUES[text[i + 1]] > value:",
                "if i + 1 < len(text) and VALUES[text[i + 1]] >= value:",
                "if VALUES[text[min(i + 1, len(text) - 1)]] >= value:",
            ),
            (
                "from_roman() is wrong for subtractive pairs like 'IX'.",
                "total -= value",
                "total -= 2 * value",
                "total += value - 2",
            ),
        ),
    ),
    (
        "inventory",
        _src(
            '''
            """Inventory bookkeeping."""


            class Inventory:
                """Tracks item quantities and unit prices."""

                def __init__(self):
                    self.items = {}

                def add(self, name, quantity, price):
                    """Add quantity units of name at unit price (the latest price wins)."""
                    if quantity <= 0:
                        raise ValueError("quantity must be positive")
                    current = self.items.get(name, (0, price))[0]
                    self.items[name] = (current + quantity, price)

                def remove(self, name, quantity):
                    """Remove quantity units; drop the item when none are left."""
                    if name not in self.items:
                        raise KeyError(name)
                    count, price = self.items[name]
                    if quantity > count:
                        raise ValueError(f"only {count} {name} in stock")
                    if count == quantity:
                        del self.items[name]
                    else:
                        self.items[name] = (count - quantity, price)

                def total_value(self):
                    """Return the value of all stock."""
                    return sum(count * price for count, price in self.items.values())
            '''
        ),
        _src(
            """
            import unittest

            from inventory import Inventory


            class TestInventory(unittest.TestCase):
                def setUp(self):
                    self.inv = Inventory()

                def test_add_accumulates(self):
                    self.inv.add("apple", 2, 3)
                    self.inv.add("apple", 3, 3)
                    self.assertEqual(self.inv.items["apple"], (5, 3))

                def test_latest_price(self):
                    self.inv.add("pear", 1, 2)
                    self.inv.add("pear", 1, 5)
                    self.assertEqual(self.inv.items["pear"], (2, 5))

                def test_remove_some(self):
                    self.inv.add("fig", 5, 1)
                    self.inv.remove("fig", 2)
                    self.assertEqual(self.inv.items["fig"], (3, 1))

                def test_remove_leaves_one(self):
                    self.inv.add("fig", 3, 1)
                    self.inv.remove("fig", 2)
                    self.assertEqual(self.inv.items["fig"], (1, 1))

                def test_remove_all(self):
                    self.inv.add("fig", 2, 1)
                    self.inv.remove("fig", 2)
                    self.assertNotIn("fig", self.inv.items)

                def test_remove_too_many(self):
                    self.inv.add("fig", 1, 1)
                    with self.assertRaises(ValueError):
                        self.inv.remove("fig", 2)

                def test_total_value(self):
                    self.inv.add("apple", 2, 3)
                    self.inv.add("pear", 4, 0.5)
                    self.assertEqual(self.inv.total_value(), 8.0)
            """
        ),
        (
            (
                "add() forgets stock that was already there.",
                "self.items[name] = (current + quantity, price)",
                "self.items[name] = (quantity, price)",
                "self.items[name] = (current + quantity, self.items.get(name, (0, price))[1])",
            ),
            (
                "Removing the last units leaves an empty entry behind.",
                "if count == quantity:",
                "if count == 0:",
                "if count <= quantity + 1:",
            ),
            (
                "total_value() ignores quantities.",
                "return sum(count * price for count, price in self.items.values())",
                "return sum(price for count, price in self.items.values())",
                "return sum(count + price for count, price in self.items.values())",
            ),
        ),
    ),
)


def _build_tasks() -> tuple[CodeTask, ...]:
    tasks = []
    # Bug k of every project before bug k + 1 of any, so consecutive seeds visit different projects.
    for k in range(3):
        for name, module_src, test_src, bugs in _PROJECTS:
            symptom, correct, buggy, decoy = bugs[k]
            lines = module_src.split("\n")
            hits = [i for i, line in enumerate(lines) if line.strip() == correct]
            if len(hits) != 1:
                raise RuntimeError(f"task bank bug: {correct!r} occurs {len(hits)} times in {name}.py, expected once")
            index = hits[0]
            indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
            lines[index] = indent + buggy
            module, tests = f"{name}.py", f"test_{name}.py"
            text = (
                f"Bug report: {symptom}\n"
                f"The project has {module} and its unittest suite {tests}. Find and fix the bug in {module} "
                "so that all tests pass, then call submit. Submission runs the original tests, so editing "
                "the tests does not help."
            )
            tasks.append(
                CodeTask(
                    id=f"code-{name}-{k + 1}",
                    text=text,
                    files={module: "\n".join(lines), tests: test_src},
                    module=module,
                    tests=tests,
                    line=index + 1,
                    buggy=indent + buggy,
                    fixed=indent + correct,
                    decoy=indent + decoy,
                )
            )
    return tuple(tasks)


TASKS: tuple[CodeTask, ...] = _build_tasks()


def answer_key(task_id: str) -> dict[str, Any]:
    """Return where the bug is and how to fix it (for scripted agents and tests).

    Returns:
        ``{"module", "tests", "line", "buggy", "fixed", "decoy"}``.

    >>> key = answer_key("code-stats-1")
    >>> key["module"], key["line"], key["fixed"].strip()
    ('stats.py', 8, 'return sum(values) / len(values)')
    """
    task = next((t for t in TASKS if t.id == task_id), None)
    if task is None:
        raise ValueError(f"unknown task id {task_id!r}; see CodeRepairEnv.task_ids()")
    return {
        "module": task.module,
        "tests": task.tests,
        "line": task.line,
        "buggy": task.buggy,
        "fixed": task.fixed,
        "decoy": task.decoy,
    }
