"""Other citizens' letters (roster `traffic = N`): what makes a real public list move.

On a real site other people write every day, so a test letter listed newest first slides to
page 2, 3, ... and its tracking code is one of many handed out that day. Each site of a roster
with `traffic = N` receives, in each of its mailboxes, N letters on a working day and a quarter
of that (rounded up) on a rest day, from 30 days before the campaign's `submit_at` (so the lists
are already full when the campaign starts) up to the clock's now.

Nothing is scheduled or stored. Which letters exist at time T is worked out from the clock at
request time, and everything about a letter (its time, title, body, writer, whether it is
public, when it is answered) is drawn from a generator seeded by the campaign name, the site's
slug, the mailbox, the day and the letter's index that day: two sandboxes with the same roster
and clock show the same letters. A day's letters are drawn once and kept (per site, mailbox and
day), so a list costs the days it spans, not the history behind them.

Their tracking codes come from the platform's daily counter that the stored letters use
(`bot.sandbox.store`): the n-th letter of the day, counting both. The clock is expected to move
forward, as time does; a letter sent at a moment the clock went back to could share a number
with one of these (the stored letter is then the one found).

They are never `Sandbox.received()` letters, send no email and follow their own fates, not the
site's roster rules: most are answered after 0-5 working days, some stay 办理中 for good, a few
were sent as not public (是否公开 = 否) and show only through the query page.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterator

from bot.calendar import WorkCalendar
from bot.clock import SHANGHAI, local
from bot.sandbox.roster import Roster, RosterSite
from bot.sandbox.behaviour import IN_PROGRESS_AFTER, Timeline
from bot.sandbox.store import SECRET_ALPHABET, ReceivedLetter, Store, parse_code, tracking_code

HISTORY_DAYS = 30             # letters from this many days before the campaign's submit_at
NOT_PUBLIC = 0.06             # share of letters whose writer chose 是否公开 = 否
NEVER_ANSWERED = 0.12         # share that stays 办理中 for good
REPLY_WORKDAYS = ((0, 22), (1, 28), (2, 20), (3, 14), (4, 10), (5, 6))   # (working days, weight)
LATE = time(16, 30)           # a letter after this (or on a rest day) is not answered the same day


def rest_day_count(n: int) -> int:
    """Letters a mailbox gets on a rest day when it gets `n` on a working day."""
    return (n + 3) // 4


@dataclass(frozen=True)
class TrafficLetter(ReceivedLetter):
    """Another citizen's letter, as its site shows it; `timeline()` is its own fate."""
    reply_at: datetime | None = None

    def timeline(self) -> Timeline:
        return Timeline(self.received_at, self.received_at + IN_PROGRESS_AFTER, self.reply_at,
                        self.reply_at, None)


@dataclass(frozen=True)
class Slot:
    """One letter of a day, without what depends on the stored letters (its number)."""
    slug: str
    mailbox: str
    day: date
    index: int                 # its place among the mailbox's letters of the day, in time order
    at: datetime
    public: bool
    reply_at: datetime | None
    title: str

    @property
    def seed(self) -> str:
        return letter_seed(self.slug, self.mailbox, self.day, self.index)


def letter_seed(slug: str, mailbox: str, day: date, index: int) -> str:
    """What a letter's draws are seeded with (after the campaign name)."""
    return f"{slug}|{mailbox}|{day.isoformat()}|{index}"


@dataclass(frozen=True)
class _Day:
    slots: tuple[Slot, ...]               # in time order
    public: tuple[Slot, ...]              # the public ones, in time order
    public_ats: tuple[datetime, ...]


@dataclass(frozen=True)
class _PlatformDay:
    ats: tuple[datetime, ...]              # every letter of the platform's sites, in number order
    slots: tuple[Slot, ...]                # the same letters
    rank: dict[tuple[str, str, int], int]  # (slug, mailbox, index) -> 0-based place


class Traffic:
    """The other citizens' letters of every site of a roster. Thread-safe."""

    def __init__(self, roster: Roster, calendar: WorkCalendar):
        self.campaign = roster.campaign.name
        self.calendar = calendar
        self.first_day = local(roster.campaign.submit_at).date() - timedelta(days=HISTORY_DAYS)
        self._order = {site.slug: i for i, site in enumerate(roster.site)}
        self._sites = {site.slug: site for site in roster.site}
        self._platform_sites: dict[str, list[RosterSite]] = {}
        for site in roster.site:
            if site.traffic:
                self._platform_sites.setdefault(site.platform, []).append(site)
        self._lock = threading.Lock()
        self._days: dict[tuple[str, str, date], _Day] = {}
        self._platform_days: dict[tuple[str, date], _PlatformDay] = {}
        self._workdays: dict[date, bool] = {}

    @property
    def any(self) -> bool:
        return bool(self._platform_sites)

    # -- the letters of one day -------------------------------------------------------------
    def day(self, site: RosterSite, mailbox: str, day: date) -> _Day:
        key = (site.slug, mailbox, day)
        with self._lock:
            got = self._days.get(key)
        if got is not None:
            return got
        slots = self._draw(site, mailbox, day)
        public = tuple(s for s in slots if s.public)
        got = _Day(slots, public, tuple(s.at for s in public))
        with self._lock:
            return self._days.setdefault(key, got)

    def _is_workday(self, day: date) -> bool:
        with self._lock:
            known = self._workdays.get(day)
        if known is None:
            known = self.calendar.is_workday(day)
            with self._lock:
                self._workdays[day] = known
        return known

    def _draw(self, site: RosterSite, mailbox: str, day: date) -> tuple[Slot, ...]:
        if not site.traffic or day < self.first_day:
            return ()
        workday = self._is_workday(day)
        rng = random.Random(f"traffic|{self.campaign}|{site.slug}|{mailbox}|{day.isoformat()}")
        n = site.traffic if workday else rest_day_count(site.traffic)
        seconds = sorted(_second_of_day(rng, workday) for _ in range(n))
        start = datetime.combine(day, time(0), tzinfo=SHANGHAI)
        slots = []
        for i, s in enumerate(seconds):
            at = start + timedelta(seconds=s)
            seed = letter_seed(site.slug, mailbox, day, i)
            fate = random.Random(f"traffic-fate|{self.campaign}|{seed}")
            public = fate.random() >= NOT_PUBLIC
            reply_at = self._reply_at(fate, at)
            title = title_of(self.campaign, seed)
            slots.append(Slot(site.slug, mailbox, day, i, at, public, reply_at, title))
        return tuple(slots)

    def _reply_at(self, rng: random.Random, at: datetime) -> datetime | None:
        if rng.random() < NEVER_ANSWERED:
            return None
        days = rng.choices([d for d, _ in REPLY_WORKDAYS], [w for _, w in REPLY_WORKDAYS])[0]
        clock = _clock(8 * 3600 + 1800 + rng.randrange(9 * 3600))     # 08:30-17:30
        base = at.date()
        if days == 0 and (not self._is_workday(base) or at.time() >= LATE):
            days = 1
        day = self.calendar.nth_workday_after(base, days)
        when = datetime.combine(day, clock, tzinfo=SHANGHAI)
        if when < at + timedelta(minutes=20):
            when = at + timedelta(minutes=30 + rng.randrange(120))
        return when

    # -- numbers (shared with the stored letters) ---------------------------------------------
    def _platform_day(self, platform: str, day: date) -> _PlatformDay:
        key = (platform, day)
        with self._lock:
            got = self._platform_days.get(key)
        if got is not None:
            return got
        slots = [s for site in self._platform_sites.get(platform, ())
                 for mailbox in site.mailboxes for s in self.day(site, mailbox, day).slots]
        slots.sort(key=lambda s: (s.at, self._order[s.slug], s.mailbox, s.index))
        got = _PlatformDay(tuple(s.at for s in slots), tuple(slots),
                           {(s.slug, s.mailbox, s.index): i for i, s in enumerate(slots)})
        with self._lock:
            return self._platform_days.setdefault(key, got)

    def count_until(self, platform: str, day: date, when: datetime) -> int:
        """How many letters of the platform's sites arrived on `day` up to `when` (inclusive):
        the numbers a letter stored at `when` comes after."""
        if platform not in self._platform_sites or day < self.first_day:
            return 0
        return bisect.bisect_right(self._platform_day(platform, day).ats, when)

    def number(self, slot: Slot, store: Store) -> int:
        """The letter's place in its platform's count of the day: the traffic before it, and the
        stored letters that arrived strictly before it."""
        site = self._sites[slot.slug]
        rank = self._platform_day(site.platform, slot.day).rank[(slot.slug, slot.mailbox, slot.index)]
        return rank + 1 + store.arrived_before(site.platform, slot.day, slot.at)

    def letter(self, slot: Slot, store: Store) -> TrafficLetter:
        site = self._sites[slot.slug]
        c = compose(self.campaign, slot.seed, site.platform, mailbox=slot.mailbox,
                    mailbox_head=_head(site, slot.mailbox))
        return TrafficLetter(site=site.name, slug=site.slug, platform=site.platform,
                             mailbox=slot.mailbox, title=c["title"], body=c["body"],
                             name=c["name"], phone=c["phone"], email=c["email"],
                             tracking_code=tracking_code(site.platform, slot.day, self.number(slot, store)),
                             secret=c["secret"], kind=c["kind"], target=c["target"],
                             public=slot.public, received_at=slot.at, reply_at=slot.reply_at)

    # -- what the pages ask ----------------------------------------------------------------------
    def find(self, site: RosterSite, mailbox: str, code: str, now: datetime,
             store: Store) -> TrafficLetter | None:
        """The letter of this site and mailbox with that tracking code, if it has arrived."""
        if not site.traffic:
            return None
        parsed = parse_code(site.platform, code)
        if parsed is None:
            return None
        day, n = parsed
        if day < self.first_day or day > local(now).date():
            return None
        slots = self._platform_day(site.platform, day).slots
        # Numbers grow with the place (stored letters only widen the gaps): a bisection.
        lo, hi = 0, len(slots)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.number(slots[mid], store) < n:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(slots):
            return None
        slot = slots[lo]
        if (slot.slug, slot.mailbox) != (site.slug, mailbox) or slot.at > now \
                or self.number(slot, store) != n:
            return None
        return self.letter(slot, store)

    def days(self, now: datetime) -> list[date]:
        """The days with letters up to `now`, newest first."""
        last = local(now).date()
        n = (last - self.first_day).days
        return [last - timedelta(days=k) for k in range(n + 1)]

    def public(self, site: RosterSite, mailbox: str, now: datetime,
               match=None, keep=None) -> tuple[int, Iterator[Slot]]:
        """(how many, the slots newest first) of the public letters that have arrived by `now`;
        `match(title)`, when given, keeps only the letters whose title it accepts, and
        `keep(slot)` only the letters it says the list shows now (a moderated board's)."""
        if not site.traffic:
            return 0, iter(())
        now = local(now)
        per_day = []
        total = 0
        for day in self.days(now):
            d = self.day(site, mailbox, day)
            if match is None and keep is None:
                shown = d.public[:bisect.bisect_right(d.public_ats, now)] if day == now.date() else d.public
            else:
                shown = tuple(s for s in d.public if s.at <= now and (match is None or match(s.title))
                              and (keep is None or keep(s)))
            total += len(shown)
            per_day.append(shown)
        return total, itertools.chain.from_iterable(reversed(x) for x in per_day)

    def arrived(self, site: RosterSite, mailbox: str, now: datetime) -> list[Slot]:
        """Every letter (public or not) that has arrived by `now`, oldest first."""
        return [s for day in reversed(self.days(now)) for s in self.day(site, mailbox, day).slots
                if s.at <= now]


def newest_first(stored: list, slots: Iterator[Slot]) -> Iterator:
    """The stored letters' views (newest first) and the traffic slots (newest first) as one
    list, newest first; a stored letter comes before the traffic of the same second (it was
    numbered after them, so it is the newer)."""
    def key(item):
        if isinstance(item, Slot):
            return (item.at, 0, item.index)
        return (item.letter.received_at, 1, 0)
    return heapq.merge(stored, slots, key=key, reverse=True)


def _second_of_day(rng: random.Random, workday: bool) -> int:
    """When a citizen writes: mostly office hours on a working day, evenings and rest days less."""
    u = rng.random()
    if workday:
        if u < 0.70:
            return rng.randrange(8 * 3600 + 1800, 18 * 3600)        # 08:30-18:00
        if u < 0.94:
            return rng.randrange(18 * 3600, 24 * 3600)              # the evening
        return rng.randrange(0, 8 * 3600 + 1800)                     # the night and early morning
    if u < 0.85:
        return rng.randrange(9 * 3600, 23 * 3600)
    return rng.randrange(0, 9 * 3600)


def _clock(seconds: int) -> time:
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def _head(site: RosterSite, mailbox: str) -> str:
    from bot.sandbox.platforms.base import mailbox_label

    return mailbox_label(site, mailbox).removesuffix("信箱")


# -- the letters' wording: the sandbox's own small bank (not the product's bot.letters) ------

ROADS = ("人民路", "建设路", "解放路", "胜利路", "滨河路", "文化路", "新华路", "长青路", "光明路",
         "迎宾路", "金山路", "东风路")
ESTATES = ("阳光花园", "锦绣家园", "翠苑小区", "金色港湾", "和谐家园", "枫林小区", "东岭新村",
           "丽景名苑", "银河小区", "书香苑", "馨园小区", "水岸华庭")
SCHOOLS = ("第一小学", "实验小学", "第三中学", "育才中学", "第二幼儿园", "东关小学")
VILLAGES = ("王家村", "李家堡村", "东坡村", "南寨村", "柳林村", "杨家湾村", "马营村")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = ("建国", "秀英", "海燕", "志强", "丽娟", "晓东", "文静", "俊杰", "桂兰", "伟", "敏", "磊",
         "静", "强", "洋", "婷", "明", "红梅", "建华", "玉兰", "国庆", "鹏", "雪", "小平", "军")
MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "139.com")

# (类型, 标题, 正文): {road}, {road2}, {estate}, {school}, {village} are filled in; a title is
# 10-25 characters once filled (the jact form's rule, the strictest), with no quotes.
TOPICS = (
    ("咨询", "关于{estate}供暖费收费标准的咨询",
     "我是{estate}的业主，今年供暖费通知的收费标准比去年高，想了解现行的收费依据和标准是什么，在哪里可以查到相关文件。"),
    ("咨询", "新生儿医保参保办理流程咨询",
     "家里刚添了孩子，想给孩子办理城乡居民医保，请问需要带哪些材料，在哪里办理，能不能在网上办？"),
    ("咨询", "灵活就业人员养老保险缴费咨询",
     "本人目前是灵活就业人员，想咨询一下养老保险的缴费档次怎么选，中断缴费以后还能不能补缴。"),
    ("咨询", "{school}今年招生划片范围咨询",
     "孩子今年该上学了，我们住在{road}附近，想问一下{school}今年的招生划片范围什么时候公布，需要准备哪些材料。"),
    ("咨询", "住房公积金异地转移接续办理咨询",
     "我从外地调动过来工作，原单位的住房公积金想转到这边，请问转移接续需要本人到哪个窗口办理。"),
    ("咨询", "农村宅基地确权登记相关问题咨询",
     "我家在{village}，老宅基地一直没有办理确权登记，想问问现在怎么申请，需要村里出具什么证明。"),
    ("咨询", "老年人高龄补贴申领条件咨询",
     "家中老人今年满八十周岁，想了解高龄补贴的申领条件和发放标准，是到社区申请还是到街道申请。"),
    ("咨询", "个体工商户营业执照注销流程咨询",
     "我在{road}开的小店准备不干了，想注销个体工商户营业执照，请问流程是什么，可以网上办理吗？"),
    ("投诉", "{estate}物业长期不维修电梯",
     "{estate}的电梯近两个月经常停运，业主多次向物业反映，物业一直推脱不修，老人和孩子上下楼非常不便。"),
    ("投诉", "{road}夜间施工噪音扰民问题",
     "{road}附近的工地最近每天晚上十一点以后还在施工，噪音很大，周边居民无法休息，希望有关部门管一管。"),
    ("投诉", "{road}餐饮店油烟扰民问题",
     "{road}沿街的几家餐饮店没有安装油烟净化设施，油烟直接排到居民楼，夏天都不敢开窗户。"),
    ("投诉", "{village}生活垃圾长期无人清运",
     "{village}村口的垃圾收集点已经半个多月没有人清运了，天气变热味道很大，村民意见很大。"),
    ("投诉", "{estate}开发商逾期不办理房产证",
     "我们{estate}的业主交房已经三年多了，开发商一直以各种理由不给办理不动产权证，请政府督促解决。"),
    ("投诉", "{road}共享单车乱停放堵塞人行道",
     "{road}公交站附近的共享单车停得到处都是，把人行道和盲道都占了，行人只能走机动车道，很不安全。"),
    ("建议", "建议{road}与{road2}交叉口增设红绿灯",
     "{road}与{road2}交叉口车流量大，上下班高峰经常堵车，行人过马路也很危险，建议增设信号灯。"),
    ("建议", "建议增开城区至{village}的公交班次",
     "从城区到{village}的公交车一天只有几趟，村里老人和学生出行很不方便，建议增开班次或者延长运营时间。"),
    ("建议", "建议在{estate}周边增设公共停车位",
     "{estate}周边停车位严重不足，晚上车辆只能停在路边，影响通行，建议利用周边空地规划公共停车场。"),
    ("建议", "关于在{road}增设公共厕所的建议",
     "{road}是商业街，每天人流量很大，但附近没有公共厕所，群众很不方便，建议合理规划增设。"),
    ("建议", "建议延长市图书馆周末开放时间",
     "市图书馆周末下午五点就闭馆了，上班族只有周末有时间去看书，建议周末开放时间延长到晚上八点。"),
    ("建议", "建议在{school}门口设置减速带",
     "{school}门口的道路车速很快，上下学时段学生很多，存在安全隐患，建议设置减速带和人行横道。"),
    ("求助", "{estate}自来水水压不足求助",
     "{estate}高层住户最近自来水水压一直不足，早晚用水高峰时基本没水，找物业说是供水公司的问题，请帮忙协调。"),
    ("求助", "{road}路灯损坏多日无人修理",
     "{road}有一段路灯坏了十几天了，晚上漆黑一片，行人和骑车的都很危险，请相关部门尽快修复。"),
    ("求助", "{estate}楼顶漏水无人处理求助",
     "我家住{estate}顶楼，一下雨就漏水，找物业说要动用维修资金，申请了几个月也没有结果，请求帮助。"),
    ("求助", "农民工工资被拖欠请求帮助",
     "我们十几个人在{road}一处工地干活，工程完工已经两个月了，包工头一直拖欠工资不给，请求帮助讨薪。"),
    ("求助", "{village}道路损毁出行困难求助",
     "{village}通往镇上的道路被雨水冲毁了一段，车辆无法通行，村民出行和农产品外运都很困难，请求帮助修复。"),
    ("咨询", "{estate}住宅专项维修资金使用咨询",
     "{estate}部分楼栋外墙脱落需要维修，想了解住宅专项维修资金的申请使用程序，需要多少业主签字同意。"),
    ("咨询", "城乡居民医保异地就医备案咨询",
     "老人长期在外地子女家居住，想办理异地就医备案，请问可以在手机上办理吗，备案后报销比例有没有变化？"),
    ("咨询", "{school}课后延时服务收费咨询",
     "孩子在{school}上学，学校通知开展课后延时服务并收取费用，想问一下收费标准是否经过物价部门核定。"),
    ("投诉", "{road}某商户占用人行道经营",
     "{road}有几家门店长期把货物摆到人行道上，还搭建了遮阳棚，行人通行困难，多次反映未见改善。"),
    ("投诉", "{estate}小区内违规饲养犬只扰民",
     "{estate}有住户在楼道里养了好几条大型犬，夜里经常狂叫，还不拴绳，老人孩子都很害怕，物业管不了。"),
    ("投诉", "{village}砖厂粉尘污染问题",
     "{village}附近的砖厂生产时粉尘很大，村里的庄稼和晾晒的衣服上都是灰，希望环保部门来查一查。"),
    ("建议", "建议{road}公交站增设候车亭",
     "{road}的公交站只有一根站牌，没有候车亭和座椅，刮风下雨时候车的群众没有地方躲避，建议增设。"),
    ("建议", "建议在{estate}附近建设口袋公园",
     "{estate}一带居民很多，但附近没有可以散步健身的地方，建议利用闲置空地建设口袋公园。"),
    ("求助", "{estate}燃气管道老化存在隐患",
     "{estate}是老旧小区，燃气管道锈蚀严重，楼道里时常能闻到气味，担心出事，请求有关部门检查更换。"),
    ("求助", "{village}留守老人冬季取暖困难",
     "{village}有几户留守老人，家里没有取暖设施，今年冬天特别冷，希望民政部门能给予帮助。"),
)
OPENINGS = ("您好！", "尊敬的领导：您好！", "领导您好，", "", "你好，")
CLOSINGS = ("希望相关部门尽快处理，谢谢！", "盼复，谢谢！", "恳请领导重视，尽快给予答复。", "谢谢！",
            "望予以解决。")


def title_of(campaign: str, seed: str) -> str:
    """The letter's title alone (what a list needs), as `compose` draws it."""
    return compose(campaign, seed, "", title_only=True)["title"]


def compose(campaign: str, seed: str, platform: str, mailbox: str = "leader",
            mailbox_head: str = "", title_only: bool = False) -> dict[str, str]:
    """Everything a citizen typed, drawn from the letter's seed (the same letter every time)."""
    rng = random.Random(f"traffic-text|{campaign}|{seed}")
    kind, title, body = TOPICS[rng.randrange(len(TOPICS))]
    road, road2 = rng.sample(ROADS, 2)
    fill = {"road": road, "road2": road2, "estate": rng.choice(ESTATES),
            "school": rng.choice(SCHOOLS), "village": rng.choice(VILLAGES)}
    if title_only:
        return {"title": title.format(**fill)}
    opening, closing = rng.choice(OPENINGS), rng.choice(CLOSINGS)
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    phone = f"1{rng.choice('35789')}{rng.randrange(10 ** 9):09d}"
    email = f"{rng.randrange(10 ** 5, 10 ** 10)}@{rng.choice(MAIL_DOMAINS)}" if rng.random() < 0.5 else ""
    secret = "".join(rng.choice(SECRET_ALPHABET) for _ in range(6))
    password = "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(8))
    target_i = rng.randrange(4)
    if platform == "minimal" and kind == "求助":
        kind = "咨询"              # that vendor's form has no 求助
    if platform == "jact":
        targets = ([mailbox_head, f"常务副{mailbox_head}", f"分管副{mailbox_head}", "政府办公室"]
                   if mailbox == "mayor" else ["主要领导", "分管领导", "办公室", "相关业务科室"])
        target = targets[target_i]
    else:
        target = ""
    bare = platform in ("legacy", "board")     # forms without email or 信件类型 (board: no title)
    return {
        "title": "" if platform == "board" else title.format(**fill),
        "body": (opening + body.format(**fill) + closing).strip(),
        "name": name, "phone": phone,
        "email": "" if bare else email,
        "kind": "" if bare else kind,
        "target": target,
        # 查询码 / 查询密码 where the platform has one (legacy: the writer's own password)
        "secret": {"jact": secret, "hdjlpt": secret, "legacy": password}.get(platform, ""),
    }
