"""Altair charts of the frames (`analyzer.frames`): each a function of a frame that returns a
chart, with one look (white background, so they read the same in light and dark JupyterLab).

    df, ch = analyzer.frames.exchanges(xs), analyzer.frames.chunks(xs)
    analyzer.charts.timeline(ch, df, ids=[...])   # tokens against time, phase by phase
    analyzer.charts.latency(df)                   # TTFT and decode rate by model
    analyzer.charts.tokens_and_cost(df)           # prompt (cached or not), reasoning, answer; cost
    analyzer.charts.gaps(ch, df)                  # inter-chunk gaps, ECDF on a log scale
    analyzer.charts.conversation(df, "c1")        # how the history grows turn after turn
    analyzer.charts.explorer(ch, df)              # click an exchange, see its timeline
    analyzer.charts.save(chart, "x.png")          # or .svg, via vl-convert

Only what has a time is drawn on a time axis, and every latency mark says where its figure
came from (`timing_source`): 1 s-resolution figures are never mixed in unseen.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from analyzer.metrics import STALL_MS

__all__ = ["conversation", "explorer", "gaps", "latency", "offline", "save", "timeline", "tokens_and_cost"]

# What the model generated, phase by phase: colours that stay apart for colour-blind readers.
PHASES = ["reasoning", "content", "tool_call", "refusal"]
PHASE_COLOURS = ["#8e6bbf", "#3b75af", "#ef8636", "#c53a32"]
TOKENS = ["prompt (cached)", "prompt (not cached)", "reasoning", "answer"]
TOKEN_COLOURS = ["#9ecae9", "#3b75af", "#8e6bbf", "#ef8636"]
SOURCES = ["chunks", "har", "mitmproxy", "created", "none"]
SOURCE_SHAPES = ["circle", "square", "diamond", "triangle-up", "cross"]
WIDTH = 560


def offline() -> str:
    """Draw altair charts in Jupyter without the network (done on import in a kernel).

    Altair's default renderer fetches Vega from a CDN; chatcap never needs the network, so
    charts are drawn by altair's JupyterChart widget with the JavaScript that vl-convert
    bundles (interactive: tooltips, selections), or as static SVG without anywidget.
    Returns the renderer's name."""
    try:
        import anywidget  # noqa: F401 - JupyterChart is an anywidget

        alt.renderers.enable("jupyter", offline=True)
        return "jupyter"
    except ImportError:
        alt.renderers.enable("svg")
        return "svg"


if "ipykernel" in sys.modules:
    offline()


def _styled(chart: Any) -> Any:
    return (
        chart.configure(background="white", font="sans-serif")
        .configure_axis(labelFontSize=11, titleFontSize=12, gridColor="#e6e6e6")
        .configure_legend(labelFontSize=11, titleFontSize=12, labelLimit=320)
        .configure_title(fontSize=14, anchor="start")
        .configure_view(stroke=None)
    )


def _label(frame: pd.DataFrame, by: str) -> pd.Series:
    """The grouping column with gaps filled in words, so no row drops out of a chart."""
    column = frame[by].astype("string") if by in frame else pd.Series("—", index=frame.index)
    if by == "served_model" and "requested_model" in frame:
        column = column.fillna(frame["requested_model"].astype("string"))
    return column.fillna("(unknown)")


class NothingToDraw(ValueError):
    """These frames hold nothing this chart draws (a HAR file has no per-read times, a
    batch of single requests no conversation): the message says what is missing."""


def timeline(
    chunks: pd.DataFrame, exchanges: pd.DataFrame | None = None, ids: list[str] | None = None, y: str = "tokens"
) -> Any:
    """Cumulative generated tokens (estimated from the text: `y="tokens"`), characters
    (`"chars"`) or events (`"chunks"`) against arrival time, coloured by phase (reasoning,
    answer, tool call, refusal). TTFT and time to answer are marked when `exchanges` is
    given; stalls (a gap of a second or more) are shaded. One panel per exchange."""
    text = chunks[chunks["kind"].isin(PHASES) & chunks["t_ms"].notna()].copy()
    if ids is not None:
        text = text[text["exchange"].isin(ids)]
    if text.empty:
        raise NothingToDraw("no timed stream events to draw (a timeline needs per-read arrival times)")
    text = text.sort_values(["exchange", "seq"])
    amount = {"tokens": text["est_tokens"].fillna(0), "chars": text["chars"], "chunks": 1}[y]
    text["amount"] = amount
    text["cumulative"] = text.groupby("exchange", observed=True)["amount"].cumsum().astype("float")
    text["t_s"] = text["t_ms"].astype("float") / 1000
    text["preview"] = text["text"].str.slice(0, 80)
    present = set(text["exchange"])
    order = [i for i in ids if i in present] if ids is not None else list(dict.fromkeys(text["exchange"]))
    y_title = {"tokens": "tokens generated (estimated from text)", "chars": "characters", "chunks": "events"}[y]

    stalls = []
    for exchange, group in text.groupby("exchange", observed=True):
        times = group["t_s"].to_numpy()
        stalls += [
            {"exchange": exchange, "start": a, "end": b, "gap_s": b - a}
            for a, b in itertools.pairwise(times)
            if (b - a) * 1000 >= STALL_MS
        ]
    marks = _marks(exchanges, order) if exchanges is not None else pd.DataFrame(columns=["exchange"])
    stall_frame = pd.DataFrame(stalls, columns=["exchange", "start", "end", "gap_s"])
    panels = [
        _timeline_panel(
            text[text["exchange"] == exchange],
            stall_frame[stall_frame["exchange"] == exchange],
            marks[marks["exchange"] == exchange],
            exchange,
            y_title,
        )
        for exchange in order
    ]
    chart = alt.vconcat(*panels).resolve_scale(color="shared")
    return _styled(chart.properties(title="Stream timeline"))


def _timeline_panel(text: pd.DataFrame, stalls: pd.DataFrame, marks: pd.DataFrame, title: str, y_title: str) -> Any:
    line = (
        alt.Chart(text)
        .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=2, interpolate="step-after")
        .encode(
            x=alt.X("t_s:Q", title="time since the request was sent (s)"),
            y=alt.Y("cumulative:Q", title=y_title),
            color=alt.Color("kind:N", title="phase", scale=alt.Scale(domain=PHASES, range=PHASE_COLOURS)),
            tooltip=[
                alt.Tooltip("seq:Q", title="event"),
                alt.Tooltip("t_ms:Q", title="arrived (ms)", format=",.1f"),
                alt.Tooltip("kind:N", title="phase"),
                alt.Tooltip("preview:N", title="text"),
            ],
        )
    )
    layers: list[Any] = [line]
    if not stalls.empty:
        shade = alt.Chart(stalls).mark_rect(color="#c53a32", opacity=0.12)
        tooltip = [alt.Tooltip("gap_s:Q", title="stall (s)", format=".2f")]
        layers.insert(0, shade.encode(x="start:Q", x2="end:Q", tooltip=tooltip))
    if not marks.empty:
        rule = alt.Chart(marks).mark_rule(strokeDash=[4, 3], strokeWidth=1.5, color="#555555")
        tooltip = [alt.Tooltip("mark:N"), alt.Tooltip("t_ms:Q", title="ms", format=",.1f")]
        layers.append(rule.encode(x="t_s:Q", tooltip=tooltip))
        label = alt.Chart(marks).mark_text(align="left", dx=3, fontSize=10, color="#555555")
        layers.append(label.encode(x="t_s:Q", y=alt.value(8), text="mark:N"))
    return alt.layer(*layers).properties(width=WIDTH, height=150, title=title)


def explorer(chunks: pd.DataFrame, exchanges: pd.DataFrame, by: str = "served_model") -> Any:
    """Linked views: every streamed exchange with per-read times as a point (TTFT against
    duration, coloured by model); click one (shift-click for more) and its stream timeline
    appears beside it. One chart, so it works in a notebook without a kernel round trip."""
    text = chunks[chunks["kind"].isin(PHASES) & chunks["t_ms"].notna()]
    streamed = set(text["exchange"])
    timed = exchanges[exchanges["id"].isin(streamed) & exchanges["ttft_ms"].notna()]
    if timed.empty:
        raise NothingToDraw("no exchanges with per-read arrival times to explore")
    points = timed.assign(group=_label(timed, by), exchange=timed["id"].astype("string"))[
        ["exchange", "group", "ttft_ms", "decode_tokens_per_s", "completion_tokens", "duration_ms"]
    ].copy()
    for column in ("ttft_ms", "decode_tokens_per_s", "completion_tokens", "duration_ms"):
        points[column] = points[column].astype("float")
    first = points.sort_values("ttft_ms")["exchange"].iloc[-1]  # the slowest to start, shown at first
    pick = alt.selection_point(fields=["exchange"], value=[{"exchange": first}], toggle="true", empty=False)
    title = {"served_model": "model", "host": "host", "provider": "provider"}.get(by, by)
    overview = (
        alt.Chart(points)
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("ttft_ms:Q", title="time to first token (ms)"),
            y=alt.Y("duration_ms:Q", title="duration (ms)"),
            color=alt.Color("group:N", title=title),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
            stroke=alt.condition(pick, alt.value("#222222"), alt.value(None)),
            tooltip=[
                "exchange:N",
                "group:N",
                alt.Tooltip("ttft_ms:Q", format=",.0f"),
                alt.Tooltip("decode_tokens_per_s:Q", format=".1f"),
                "completion_tokens:Q",
            ],
        )
        .add_params(pick)
        .properties(width=300, height=260, title="Exchanges (click one)")
    )
    text = text[text["exchange"].isin(points["exchange"])].sort_values(["exchange", "seq"]).copy()
    text["cumulative"] = text.groupby("exchange", observed=True)["est_tokens"].cumsum().astype("float")
    text["t_s"] = text["t_ms"].astype("float") / 1000
    text["preview"] = text["text"].str.slice(0, 80)
    text["exchange"] = text["exchange"].astype("string")
    stream = (
        alt.Chart(text[["exchange", "seq", "t_ms", "t_s", "kind", "cumulative", "preview"]])
        .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=2, interpolate="step-after")
        .encode(
            x=alt.X("t_s:Q", title="time since the request was sent (s)"),
            y=alt.Y("cumulative:Q", title="tokens generated (estimated from text)"),
            color=alt.Color("kind:N", title="phase", scale=alt.Scale(domain=PHASES, range=PHASE_COLOURS)),
            detail="exchange:N",
            tooltip=["exchange:N", alt.Tooltip("t_ms:Q", title="arrived (ms)", format=",.1f"), "kind:N", "preview:N"],
        )
        .transform_filter(pick)
        .properties(width=WIDTH - 80, height=260, title="Stream timeline of the selected exchanges")
    )
    return _styled(alt.hconcat(overview, stream).resolve_scale(color="independent"))


def _marks(exchanges: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    rows = []
    picked = exchanges[exchanges["id"].isin(order)]
    for _, row in picked.iterrows():
        if row.get("timing_source") != "chunks":
            continue
        for column, label in (("ttft_ms", "TTFT"), ("time_to_answer_ms", "answer")):
            value = row.get(column)
            if pd.notna(value) and not (label == "answer" and value == row.get("ttft_ms")):
                rows.append({"exchange": row["id"], "mark": label, "t_ms": float(value), "t_s": float(value) / 1000})
    return pd.DataFrame(rows, columns=["exchange", "mark", "t_ms", "t_s"])


def latency(exchanges: pd.DataFrame, by: str = "served_model") -> Any:
    """TTFT and decode rate per model (or `by="host"` / `"provider"`): a box per group over
    the exchanges as points, each point shaped by where its timing came from."""
    frame = exchanges.assign(group=_label(exchanges, by))
    frame = frame[["id", "group", "ttft_ms", "decode_tokens_per_s", "timing_source", "timing_resolution_ms"]].copy()
    frame["timing_source"] = frame["timing_source"].astype("string").fillna("none")
    for column in ("ttft_ms", "decode_tokens_per_s"):
        frame[column] = frame[column].astype("float")
    title = {"served_model": "model", "host": "host", "provider": "provider"}.get(by, by)

    def panel(column: str, axis: str) -> Any:
        data = frame[frame[column].notna()]
        y = alt.Y("group:N", title=title, sort="ascending")
        box = (
            alt.Chart(data)
            .mark_boxplot(size=14, opacity=0.35, outliers=False, color="#3b75af")
            .encode(x=alt.X(f"{column}:Q", title=axis), y=y)
        )
        points = (
            alt.Chart(data)
            .mark_point(filled=True, size=45, opacity=0.85)
            .encode(
                x=f"{column}:Q",
                y=y,
                shape=alt.Shape(
                    "timing_source:N", title="timed by", scale=alt.Scale(domain=SOURCES, range=SOURCE_SHAPES)
                ),
                color=alt.Color(
                    "timing_source:N",
                    title="timed by",
                    scale=alt.Scale(domain=SOURCES, range=["#3b75af", "#2c9f5b", "#17a2b8", "#c53a32", "#888888"]),
                ),
                tooltip=[
                    "id:N",
                    alt.Tooltip(f"{column}:Q", format=",.1f"),
                    "timing_source:N",
                    alt.Tooltip("timing_resolution_ms:Q", title="resolution (ms)"),
                ],
            )
        )
        return alt.layer(box, points).properties(width=230, height=alt.Step(26))

    chart = alt.hconcat(
        panel("ttft_ms", "time to first token (ms)"), panel("decode_tokens_per_s", "decode rate (tokens/s)")
    )
    return _styled(chart.properties(title=f"Latency by {title}"))


def _token_rows(exchanges: pd.DataFrame) -> pd.DataFrame:
    frame = exchanges
    cached = frame["cached_tokens"].astype("Float64").fillna(0)
    prompt = frame["prompt_tokens"].astype("Float64")
    reasoning = frame["reasoning_tokens"].astype("Float64").fillna(0)
    completion = frame["completion_tokens"].astype("Float64")
    parts = pd.DataFrame(
        {
            "id": frame["id"],
            "tokens_source": frame["tokens_source"].astype("string").fillna("none"),
            "prompt (cached)": cached.where(prompt.notna()),
            "prompt (not cached)": prompt - cached,
            "reasoning": reasoning.where(completion.notna()),
            "answer": completion - reasoning,
        }
    )
    long = parts.melt(id_vars=["id", "tokens_source"], var_name="part", value_name="tokens")
    long = long[long["tokens"].notna() & (long["tokens"] > 0)]
    long["tokens"] = long["tokens"].astype("float")
    return long


def tokens_and_cost(exchanges: pd.DataFrame) -> Any:
    """Per exchange, prompt tokens (cached and not), reasoning and answer tokens (marked
    "(estimated)" when the stream reported none); below, cost over time (or in order,
    without start times)."""
    # Estimated counts are named so on the axis: a colour or a shade would read as another part.
    labels = exchanges["id"].astype("string") + exchanges["tokens_source"].astype("string").map(
        {"estimated": " (estimated)"}
    ).fillna("")
    long = _token_rows(exchanges).merge(pd.DataFrame({"id": exchanges["id"], "label": labels}), on="id")
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=list(labels), title=None),
            x=alt.X("tokens:Q", title="tokens", stack="zero"),
            color=alt.Color("part:N", title="tokens", scale=alt.Scale(domain=TOKENS, range=TOKEN_COLOURS)),
            order=alt.Order("part_order:Q"),
            tooltip=["id:N", "part:N", alt.Tooltip("tokens:Q", format=","), "tokens_source:N"],
        )
        .transform_calculate(part_order=f"indexof({TOKENS!r}, datum.part)")
        .properties(width=WIDTH, height=alt.Step(14), title="Tokens per exchange")
    )
    costs = exchanges[["id", "started_at", "cost_usd", "cost_source"]].copy()
    costs = costs[costs["cost_usd"].notna()]
    costs["cost_usd"] = costs["cost_usd"].astype("float")
    costs["position"] = range(1, len(costs) + 1)
    dated = costs["started_at"].notna().all() and not costs.empty
    costs["cumulative"] = costs.sort_values("started_at" if dated else "position")["cost_usd"].cumsum()
    x = (
        alt.X("started_at:T", title="request started (UTC)")
        if dated
        else alt.X("position:Q", title="exchange (in order)")
    )
    cost = (
        alt.Chart(costs)
        .mark_line(point=True, interpolate="step-after", color="#555555")
        .encode(
            x=x,
            y=alt.Y("cumulative:Q", title="cumulative cost (USD)", axis=alt.Axis(format="$,.4~f")),
            tooltip=["id:N", alt.Tooltip("cost_usd:Q", title="cost (USD)", format="$,.6f"), "cost_source:N"],
        )
        .properties(width=WIDTH, height=140, title="Cost over time (priced or reported; unknown prices left out)")
    )
    return _styled(alt.vconcat(bars, cost))


def gaps(chunks: pd.DataFrame, exchanges: pd.DataFrame, by: str = "served_model") -> Any:
    """Time between consecutive stream events, per model: the share of gaps up to each
    length (an ECDF), on a log scale so a 20 ms rhythm and a 2 s stall both show."""
    timed = chunks[chunks["t_ms"].notna()][["exchange", "seq", "t_ms"]].drop_duplicates(["exchange", "seq"])
    timed = timed.sort_values(["exchange", "seq"])
    timed["gap_ms"] = timed.groupby("exchange", observed=True)["t_ms"].diff().astype("float")
    timed = timed[timed["gap_ms"] > 0]
    groups = pd.Series(_label(exchanges, by).to_numpy(), index=exchanges["id"].astype("string"))
    timed["group"] = timed["exchange"].astype("string").map(groups).fillna("(unknown)")
    timed = timed.sort_values(["group", "gap_ms"])
    timed["share"] = timed.groupby("group").cumcount().add(1) / timed.groupby("group")["gap_ms"].transform("size")
    title = {"served_model": "model", "host": "host", "provider": "provider"}.get(by, by)
    line = (
        alt.Chart(timed)
        .mark_line(interpolate="step-after", strokeWidth=2)
        .encode(
            x=alt.X("gap_ms:Q", title="gap between stream events (ms, log scale)", scale=alt.Scale(type="log")),
            y=alt.Y("share:Q", title="share of gaps at most this long", axis=alt.Axis(format="%")),
            color=alt.Color("group:N", title=title),
            tooltip=["group:N", alt.Tooltip("gap_ms:Q", format=",.1f"), alt.Tooltip("share:Q", format=".0%")],
        )
    )
    stall = alt.Chart(pd.DataFrame({"gap_ms": [STALL_MS], "label": ["stall"]}))
    rule = stall.mark_rule(strokeDash=[4, 3], color="#c53a32").encode(x="gap_ms:Q")
    text = stall.mark_text(align="left", dx=4, dy=-4, color="#c53a32").encode(
        x="gap_ms:Q", y=alt.value(248), text="label:N"
    )
    chart = alt.layer(line, rule, text).properties(width=WIDTH, height=260, title="Inter-chunk gaps")
    return _styled(chart)


def conversation(exchanges: pd.DataFrame, conversation: str | None = None) -> Any:
    """The turns of one conversation (default: the one with the most exchanges): prompt
    tokens per exchange, cached and not, growing as the history is resent every turn;
    regenerations and edits labelled."""
    frame = exchanges[exchanges["conversation"].notna()]
    if frame.empty:
        raise NothingToDraw("no conversations in these exchanges")
    if conversation is None:
        conversation = str(frame["conversation"].astype("string").value_counts().idxmax())
    frame = frame[frame["conversation"].astype("string") == conversation].copy()
    if frame.empty:
        raise NothingToDraw(f"no conversation {conversation!r}")
    frame["step"] = [f"{n}. turn {turn}" for n, turn in enumerate(frame["turn"].astype("Int64").fillna(0), 1)]
    frame["branch"] = frame["branch"].astype("string").fillna("")
    long = _token_rows(frame).merge(frame[["id", "step", "branch"]], on="id")
    long = long[long["part"].isin(TOKENS[:2]) | (long["part"] == "answer")]
    order = list(frame["step"])
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=order, title="exchange, in order", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("tokens:Q", title="tokens", stack="zero"),
            color=alt.Color("part:N", title="tokens", scale=alt.Scale(domain=TOKENS, range=TOKEN_COLOURS)),
            order=alt.Order("part_order:Q"),
            tooltip=["id:N", "part:N", alt.Tooltip("tokens:Q", format=","), "branch:N"],
        )
        .transform_calculate(part_order=f"indexof({TOKENS!r}, datum.part)")
    )
    tops = frame[frame["branch"] != ""].assign(
        top=lambda f: (
            f["prompt_tokens"].astype("Float64").fillna(0) + f["completion_tokens"].astype("Float64").fillna(0)
        )
    )
    labels = (
        alt.Chart(tops.assign(top=tops["top"].astype("float"))[["step", "top", "branch"]])
        .mark_text(dy=-7, fontSize=11, color="#333333")
        .encode(x=alt.X("step:N", sort=order), y=alt.Y("top:Q"), text="branch:N")
    )
    chart = alt.layer(bars, labels).properties(
        width=max(WIDTH // 2, 70 * len(order)), height=260, title=f"Conversation {conversation}: the history grows"
    )
    return _styled(chart)


def save(chart: Any, path: str | os.PathLike[str], scale: float = 2.0) -> Path:
    """Write a chart as PNG (at `scale`) or SVG, by the file's suffix, through vl-convert."""
    import vl_convert

    from analyzer.files import write_private

    path = Path(path)
    spec = chart.to_json()
    if path.suffix.lower() == ".svg":
        return write_private(path, vl_convert.vegalite_to_svg(spec))
    if path.suffix.lower() == ".png":
        return write_private(path, vl_convert.vegalite_to_png(spec, scale=scale))
    raise ValueError(f"{path.name}: charts are saved as .png or .svg")
