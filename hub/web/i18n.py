"""The consoles' words, Chinese first and English as a choice (`?lang=en`, remembered in a cookie)."""

from verifier.report import LANGUAGES, TYPE_NAMES

WORDS: dict[str, tuple[str, str]] = {
    "app": ("远程异地评标 · 证据与监管", "Remote bid evaluation · evidence and supervision"),
    "skip": ("跳到正文", "Skip to content"),
    "nav": ("主导航", "Main navigation"),
    "supervision": ("监管台", "Supervision"),
    "cases": ("异议与不当行为", "Objections and misconduct"),
    "verify": ("上传核验", "Verify an extract"),
    "statistics": ("月度统计", "Monthly statistics"),
    "month": ("月份", "Month"),
    "show": ("查看", "Show"),
    "stats_source": ("以下数字由已记入日志的证据计算，与 GET /statistics、GET /signals "
                     "及对审计包运行 bidtrace stats 所用代码相同。",
                     "These figures are computed from the evidence in the log, by the same code as GET /statistics, "
                     "GET /signals and bidtrace stats on an audit extract."),
    "month_totals": ("本月合计", "This month"),
    "objections_filed": ("异议：提出", "Objections filed"),
    "objections_relayed": ("异议：已反映", "Objections relayed"),
    "objections_answered": ("异议：已答复", "Objections answered"),
    "complaints_filed": ("投诉", "Complaints"),
    "misconduct_recorded": ("不当行为记录", "Misconduct cases"),
    "records_counted": ("计入的证据记录", "Evidence records counted"),
    "bookings_per_venue": ("各场地预约：发出、确认、拒绝", "Bookings per venue: offered, confirmed, declined"),
    "offered": ("发出要约", "Offered"),
    "confirmed": ("确认", "Confirmed"),
    "declined": ("拒绝", "Declined"),
    "sessions_per_month": ("近十二个月评标场次", "Sessions per month, past twelve months"),
    "signals": ("围标串标预警信号", "Bid-rigging signals"),
    "signals_note": ("信号不是结论：每条列出其所依据的证据叶序号，供核查。",
                     "Signals, not verdicts: each lists the leaves it rests on, to be checked."),
    "signal_kind": ("信号", "Signal"),
    "explanation": ("说明", "Explanation"),
    "no_signals": ("无信号", "No signals"),
    "venue_console": ("场地工作台", "Venue console"),
    "public": ("信息公开", "Public information"),
    "signed_in_as": ("当前登录", "Signed in as"),
    "logout": ("退出登录", "Sign out"),
    "language": ("English", "中文"),
    "login_title": ("登录控制台", "Sign in to the console"),
    "login_how": ("控制台不保存口令。请在持有您密钥的电脑上运行下列命令，它用您登记的密钥签名申请一个一次性登录链接"
                  "（两分钟内有效，仅可使用一次），然后在浏览器中打开该链接：",
                  "The console keeps no passwords. On the computer that holds your key, run this command: it signs "
                  "a request for a one-time login link with your registered key (valid for two minutes, usable "
                  "once); then open the link in your browser:"),
    "login_confirm": ("确认以下列身份登录：", "Confirm signing in as:"),
    "login_button": ("登录", "Sign in"),
    "no_console": ("您的角色没有控制台页面。", "Your role has no console pages."),
    "sessions": ("评标场次", "Evaluation sessions"),
    "live": ("实时更新", "Updates live"),
    "session": ("场次", "Session"),
    "project": ("项目", "Project"),
    "main_venue": ("主场", "Main venue"),
    "venue": ("场地", "Venue"),
    "room": ("评标室", "Room"),
    "slot": ("时段", "Slot"),
    "status": ("状态", "Status"),
    "alarms": ("告警", "Alarms"),
    "none": ("无", "none"),
    "timeline": ("证据时间线", "Evidence timeline"),
    "leaf": ("叶序号", "Leaf"),
    "type": ("类型", "Type"),
    "time": ("时间", "Time"),
    "submitter": ("提交方", "Submitter"),
    "receipt": ("回执", "Receipt"),
    "prove_it": ("验证", "Prove it"),
    "received_at": ("公证接收时间", "Received by the notary"),
    "leaf_hash": ("叶哈希", "Leaf hash"),
    "record": ("记录内容", "Record"),
    "inclusion_proof": ("包含证明", "Inclusion proof"),
    "anchor": ("锚定", "Anchor"),
    "anchored_tree": ("锚定的树", "Anchored tree"),
    "ledger": ("账本", "Ledger"),
    "tx": ("交易", "Transaction"),
    "anchored_at": ("锚定时间", "Anchored at"),
    "checked_here": ("本页核验", "Checked here"),
    "proof_note": ("包含证明由本页用 verifier 现场核算；锚定在账本上的背书证据"
                   "请对该项目的审计摘录运行 bidtrace verify 离线核验。",
                   "The inclusion proof is recomputed here with the verifier; the anchor's ledger evidence is "
                   "checked offline by running bidtrace verify on the project's audit extract."),
    "bookings": ("场地预约", "Bookings"),
    "objections": ("异议", "Objections"),
    "misconduct": ("不当行为", "Misconduct"),
    "incidents": ("突发事件", "Incidents"),
    "deadline": ("答复期限", "Deadline"),
    "overdue": ("已逾期", "overdue"),
    "summary": ("摘要", "Summary"),
    "subject": ("对象", "Subject"),
    "description": ("说明", "Description"),
    "evidence": ("证据叶", "Evidence leaves"),
    "kind": ("类别", "Kind"),
    "started": ("开始", "Started"),
    "ended": ("结束", "Ended"),
    "open": ("未结束", "open"),
    "upload_label": ("审计摘录文件（.zip，由 bidtrace extract 生成）",
                     "Audit extract (.zip, made by bidtrace extract)"),
    "upload_button": ("上传并核验", "Upload and verify"),
    "upload_roots": ("核验所依据的公布信任根（本系统配置）：",
                     "Checked against the published roots this hub is configured with:"),
    "no_roots": ("本系统未配置公布的信任根（hub serve --trust）：任何摘录至多为 UNTRUSTED。",
                 "This hub has no published roots configured (hub serve --trust): any extract is UNTRUSTED at best."),
    "verdict": ("结论", "Verdict"),
    "failed_checks": ("未通过的核验", "Checks that failed"),
    "report": ("核验报告", "Verification report"),
    "today_bookings": ("今日及待确认的预约", "Today's bookings and offers to answer"),
    "confirm": ("确认", "Confirm"),
    "decline": ("拒绝", "Decline"),
    "roster": ("名册与签到", "Roster and check-ins"),
    "expert": ("专家编号", "Expert id"),
    "result": ("结果", "Result"),
    "identity_checked": ("身份核验", "Identity checked"),
    "cameras": ("录像设备状态", "Recorder health"),
    "camera": ("摄像机", "Camera"),
    "segments": ("片段数", "Segments"),
    "last_segment": ("最后片段结束", "Last segment ended"),
    "backlog": ("队列积压（接收晚于拍摄）", "Queue backlog (received after capture)"),
    "gaps": ("断档", "Gaps"),
    "report_incident": ("报告突发事件", "Report an incident"),
    "resolve": ("已恢复", "Resolved"),
    "submit": ("提交", "Submit"),
    "no_items": ("暂无", "None yet"),
    "public_intro": ("依法公开的评标项目信息：场地、时间、已揭示的抽取事实和已公布的不当行为。"
                     "不含个人信息。每一项均链接其公开证明。",
                     "What may be published of each evaluation: venue, time, disclosed draw facts and published "
                     "misconduct cases. No personal data. Each item links its public proof."),
    "projects": ("项目", "Projects"),
    "draws": ("专家抽取", "Expert draws"),
    "pool": ("专家库", "Pool"),
    "drawn": ("抽取人数", "Drawn"),
    "sealed": ("评标结束前密封", "sealed until the evaluation ends"),
    "selected": ("抽中专家编号", "Experts drawn"),
    "commitment": ("承诺", "Commitment"),
    "archive": ("归档", "Archive"),
    "public_proof": ("公开证明", "Public proof"),
    "back": ("返回", "Back"),
    "error": ("无法完成", "Cannot be done"),
}

ALARM_NAMES: dict[str, tuple[str, str]] = {
    "recording_gap": ("录像断档", "recording gap"),
    "recorder_silent": ("录像中断", "recorder silent"),
    "late_checkin": ("迟到签到", "late check-in"),
    "missing_checkin": ("未签到", "not checked in"),
    "objection_overdue": ("异议逾期", "objection overdue"),
    "anchor_lag": ("锚定滞后", "anchor lag"),
    "venue_offline": ("场地离线", "venue offline"),
    "notary_unreachable": ("公证服务不可达", "notary unreachable"),
    "receipt_not_included": ("回执未兑现", "receipt not kept"),
    "receipt_unconfirmed": ("回执逾期未入检查点", "receipt not in a checkpoint"),
}


STATUS_NAMES: dict[str, str] = {
    "open": "进行中", "archived": "已归档", "reserved": "已预留", "offered": "待确认", "confirmed": "已确认",
    "declined": "已拒绝", "cancelled": "已取消", "received": "已受理", "under_review": "复核中", "answered": "已答复",
    "withdrawn": "已撤回", "recorded": "已记录", "verified": "已核实", "published": "已公布", "forwarded": "已移送",
    "committed": "已承诺", "drawn": "已抽取", "present": "已到", "absent": "缺席", "rejected": "未通过",
    "unverified": "未核验",
}


def status_names(lang: str) -> dict[str, str]:
    """States as people read them: Chinese names, or the states' own (English) words."""
    return STATUS_NAMES if lang == "zh" else {}


def pick(lang: str | None) -> str:
    return lang if lang in LANGUAGES else "zh"


def words(lang: str) -> dict[str, str]:
    i = 0 if lang == "zh" else 1
    return {key: pair[i] for key, pair in WORDS.items()}


def alarm_names(lang: str) -> dict[str, str]:
    i = 0 if lang == "zh" else 1
    return {key: pair[i] for key, pair in ALARM_NAMES.items()}


def type_names(lang: str) -> dict[str, str]:
    """Record types, named as the court's report names them."""
    return TYPE_NAMES[lang]
