"""The latency model: cited profiles and quotas, cold and warm starts, waiting for concurrency, throttling,
determinism, runs that say they are simulated, and fitting a profile back from a run."""

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.cli import main
from yafdp.simulation.profiles import Distribution, LatencyProfileError, load_profile, profile_text
from yafdp.simulation.timing import SimulatedTiming
from yafdp.simulation.quotas import TokenBucket, load_quotas
from yafdp.simulation.fitting import fit_profile
from yafdp.runs import RunOptions, run_saga
from yafdp.analysis.trace import end_to_end, hop_latency, load_run

SHIPPED = Path(__file__).resolve().parents[2] / "data"


def _profile_file(tmp_path, change) -> Path:
    document = json.loads((SHIPPED / "latency" / "aws-eu-west-1.json").read_text())
    change(document)
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(document))
    return path


def test_every_figure_of_the_shipped_profile_is_cited_or_labelled_an_assumption():
    document = load_profile().document
    for name, spec in document["distributions_ms"].items():
        source = spec.get("source", {})
        assert spec.get("assumption") or (source.get("url") and source.get("measured") and source.get("region")), name


def test_every_quota_cites_the_aws_page_it_comes_from():
    quotas = json.loads((SHIPPED / "quotas.json").read_text())["quotas"]
    for name, quota in quotas.items():
        assert quota["source"]["url"].startswith("https://docs.aws.amazon.com/"), name
    assert load_quotas().eventbridge_invocations_per_second == 18750


def test_a_profile_figure_without_source_or_assumption_is_refused_naming_file_and_key(tmp_path):
    path = _profile_file(tmp_path, lambda d: d["distributions_ms"]["handler"].pop("assumption"))
    with pytest.raises(LatencyProfileError, match=r"profile.json: distributions_ms.handler: needs a source"):
        load_profile(path)


def test_a_profile_file_is_found_by_its_path_whatever_its_name(tmp_path, monkeypatch):
    """The new-user review's case: `--latency-model afile`, a file in the current folder, was looked up as
    data/latency/afile.json."""
    shipped = load_profile("aws-eu-west-1").document
    (tmp_path / "mine").write_text(json.dumps({**shipped, "name": "mine"}))
    monkeypatch.chdir(tmp_path)
    assert load_profile("mine").name == "mine"


def test_an_unknown_profile_name_lists_the_shipped_ones():
    with pytest.raises(LatencyProfileError, match="aws-eu-west-1"):
        load_profile("us-mars-1")


def test_a_distribution_reproduces_its_quantiles_when_sampled():
    d = Distribution({"p10": 113, "p50": 148, "p90": 241, "p99": 387})
    rng = random.Random(7)
    samples = sorted(d.sample(rng) * 1000 for _ in range(50_000))
    for q, expected in ((0.1, 113), (0.5, 148), (0.9, 241), (0.99, 387)):
        assert samples[int(q * len(samples))] == pytest.approx(expected, rel=0.04)


def test_a_single_quantile_is_a_constant_latency():
    assert Distribution({"p50": 12}).sample(random.Random(1)) == 0.012


def test_decreasing_quantiles_are_refused():
    with pytest.raises(ValueError, match="must not decrease"):
        Distribution({"p50": 20, "p90": 10})


def test_the_first_call_is_a_cold_start_and_the_next_one_reuses_the_warm_environment():
    timing = SimulatedTiming(load_profile(), seed=3, invocation="direct")
    start, end = timing.reserve("payment", 0.0)
    assert end > start > 0.1  # runtime and package init before the handler runs
    assert timing.reserve("payment", end + 1.0)[0] == end + 1.0  # warm: no wait
    assert (timing.cold_starts, timing.warm_starts) == (1, 1)


def test_an_environment_idle_longer_than_the_timeout_is_reclaimed():
    timing = SimulatedTiming(load_profile(), seed=3, invocation="direct")
    _, end = timing.reserve("payment", 0.0)
    later = end + load_profile().idle_timeout + 60
    assert timing.reserve("payment", later)[0] > later
    assert timing.cold_starts == 2


def test_a_delivery_waits_for_the_reserved_concurrency_and_starts_when_the_first_call_ends(tmp_path):
    profile = load_profile(_profile_file(tmp_path, lambda d: d["lambda"].update(reserved_concurrency={"payment": 1})))
    timing = SimulatedTiming(profile, seed=1, invocation="direct")
    _, first_end = timing.reserve("payment", 0.0)
    second, second_end = timing.reserve("payment", 0.05)  # one environment at most, busy: it starts at its end
    assert second == pytest.approx(first_end) and second_end > second
    assert timing.waits == 1 and timing.cold_starts == 1


def test_a_waiting_delivery_keeps_its_reservation_and_later_ones_queue_behind_it(tmp_path):
    profile = load_profile(_profile_file(tmp_path, lambda d: d["lambda"].update(reserved_concurrency={"payment": 1})))
    timing = SimulatedTiming(profile, seed=1, invocation="direct")
    calls = [timing.reserve("payment", 0.0) for _ in range(4)]
    for (_, end), (start, _) in zip(calls, calls[1:]):  # one environment: each call starts when the one before ends
        assert start == pytest.approx(end)
    assert timing.waits == 3 and timing.report()["peak_concurrency"] == {"payment": 1}


def test_the_sqs_event_source_mapping_starts_with_five_concurrent_batches():
    timing = SimulatedTiming(load_profile(), seed=1, invocation="queue")
    calls = [timing.reserve("notification", 0.0) for _ in range(6)]
    assert timing.cold_starts == 5 and timing.waits == 1
    assert calls[5][0] == pytest.approx(min(end for _, end in calls[:5]))  # the sixth waits for the first to end


def test_a_throttle_admits_requests_at_its_rate_once_the_burst_is_spent():
    bucket = TokenBucket(rate=2.0, burst=2)
    assert [bucket.admit(0.0) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    assert bucket.throttled == 2


def _saga_ms(out: Path) -> float:
    return end_to_end(load_run(out))["saga_s"].median() * 1000


def test_latency_bends_when_the_offered_load_passes_the_eventbridge_invocation_quota(tmp_path):
    # Quotas scaled by 0.01: 187.5 invocations/s, about 17 orders/s with 11 deliveries per order.
    calm = run_saga(RunOptions(orders=150, seed=1, out=tmp_path / "calm", arrival_rate=5, latency_model="aws-eu-west-1",
                               quota_scale=0.01))
    busy = run_saga(RunOptions(orders=600, seed=1, out=tmp_path / "busy", arrival_rate=60, latency_model="aws-eu-west-1",
                               quota_scale=0.01))
    assert calm["simulation"]["invocations_throttled"] == 0
    assert busy["simulation"]["invocations_throttled"] > 1000
    assert _saga_ms(tmp_path / "busy") > 5 * _saga_ms(tmp_path / "calm")
    # Throttled invocations are delayed, never lost; PutEvents calls throttled past the producer's retries are
    # refused: an order's request so refused is in refusals, a handler's delivery so failed is delivered again.
    assert busy["orders"]["not_terminal"] == 0 and busy["simulation"]["invocations_expired"] == 0
    assert busy["orders"]["placed"] + busy["orders"]["refused"] == 600
    assert busy["simulation"]["put_events_refused"] == busy["orders"]["refused"] + busy["deliveries"]["failed"] > 0


def _tables(out: Path) -> tuple:
    with sqlite3.connect(out / "run.db") as db:
        return (db.execute("SELECT event_id, detail_type, published_at FROM events ORDER BY seq").fetchall(),
                db.execute("SELECT event_id, rule, delivered_at, finished_at FROM deliveries ORDER BY rowid").fetchall())


def test_a_simulated_run_is_the_same_for_the_same_seed_and_differs_for_another(tmp_path):
    options = dict(orders=40, latency_model="aws-eu-west-1")
    run_saga(RunOptions(seed=5, out=tmp_path / "a", **options))
    run_saga(RunOptions(seed=5, out=tmp_path / "b", **options))
    run_saga(RunOptions(seed=6, out=tmp_path / "c", **options))
    assert _tables(tmp_path / "a") == _tables(tmp_path / "b")
    assert _tables(tmp_path / "a") != _tables(tmp_path / "c")


def test_summary_run_db_and_plots_say_the_times_are_simulated(tmp_path):
    summary = run_saga(RunOptions(orders=10, seed=1, out=tmp_path, latency_model="aws-eu-west-1"))
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["latency_model"] == summary["latency_model"] == "aws-eu-west-1"
    assert written["times"].startswith("simulated")
    run = load_run(tmp_path)
    assert run.simulated and "aws-eu-west-1" in run.time_label
    latency = hop_latency(run)["latency_s"]
    assert latency.min() > 0.05  # EventBridge's published delivery latency, not this laptop's microseconds


def test_a_measured_run_says_so(tmp_path):
    run_saga(RunOptions(orders=5, seed=1, out=tmp_path))
    run = load_run(tmp_path)
    assert not run.simulated and run.info["times"].startswith("measured")


def test_fitting_a_simulated_run_recovers_the_profile_it_was_simulated_with(tmp_path):
    def without_cold_starts_or_polling(document):
        hops = document["distributions_ms"]
        for key in ("sqs_polling", "lambda_runtime_init", "lambda_package_init"):
            hops[key] = {"p50": 0, "assumption": "left out for this test"}
    base = _profile_file(tmp_path, without_cold_starts_or_polling)
    run_saga(RunOptions(orders=400, seed=2, out=tmp_path / "run", arrival_rate=5, latency_model=str(base)))
    fitted = fit_profile(tmp_path / "run", base=base)
    hops = fitted["distributions_ms"]
    assert hops["eventbridge_delivery"]["p50"] == pytest.approx(148, rel=0.06)
    assert hops["eventbridge_delivery"]["p90"] == pytest.approx(241, rel=0.1)
    assert hops["handler"]["p50"] == pytest.approx(15, rel=0.1)
    assert set(fitted["handler_by_service"]) >= {"order", "notification", "payment"}
    # The fitted profile round-trips: saved, loaded by name of file, and run with.
    path = tmp_path / "fitted.json"
    path.write_text(profile_text(fitted))
    assert load_profile(path).hops["eventbridge_delivery"].quantile(0.5) == pytest.approx(hops["eventbridge_delivery"]["p50"] / 1000)
    again = run_saga(RunOptions(orders=20, seed=3, out=tmp_path / "again", latency_model=str(path)))
    assert again["orders"]["not_terminal"] == 0 and again["latency_model"] == str(path)


def test_fitting_needs_enough_deliveries(tmp_path):
    run_saga(RunOptions(orders=1, seed=1, out=tmp_path))
    with pytest.raises(ValueError, match="at least 20"):
        fit_profile(tmp_path)


def test_cli_runs_with_a_latency_model_and_refuses_an_unknown_one(tmp_path, capsys):
    assert main(["run", "--orders", "5", "--out", str(tmp_path), "--latency-model", "aws-eu-west-1"]) == 0
    assert "simulated seconds on a virtual clock" in capsys.readouterr().out
    assert main(["run", "--orders", "5", "--out", str(tmp_path), "--latency-model", "nowhere"]) == 2
    assert "no such latency profile" in capsys.readouterr().err


def test_cli_fits_a_profile_from_a_run(tmp_path, capsys):
    run_saga(RunOptions(orders=30, seed=1, out=tmp_path / "run", latency_model="aws-eu-west-1"))
    assert main(["fit-profile", str(tmp_path / "run"), "--out", str(tmp_path / "mine.json")]) == 0
    assert load_profile(tmp_path / "mine.json").name == "mine"
    said = capsys.readouterr()
    assert "eventbridge_delivery: p10" in said.out
    # A local run's hops are not AWS's: fitted all the same, with one line on stderr that says so.
    assert said.err == (f"yafdp fit-profile: note: {tmp_path / 'run'} ran on the local bus, so the hops fitted are the "
                        "draws of the latency model 'aws-eu-west-1', not AWS's: fit a run made with --backend aws to "
                        "model AWS\n")


def test_quotas_scaled_keep_the_pollers_scaling_behaviour():
    scaled = load_quotas().scaled(0.01)
    assert scaled.eventbridge_put_events_per_second == 100
    assert scaled.sqs_event_source_initial_concurrency == 5


def test_profile_documents_are_not_shared_between_loads():
    one = load_profile()
    one.document["distributions_ms"].clear()  # a caller that edits what it loaded…
    assert load_profile().document["distributions_ms"]  # …changes nothing for the next one


def test_a_simulated_run_prints_its_saga_latency_cold_starts_waits_and_throttles(tmp_path):
    """The review's case: a latency-model run's summary printed only the simulated seconds. The figures printed
    are summary.json's, and the latency the same as the trace's (pandas); the command imports no pandas."""
    out = tmp_path / "run"
    script = ("import sys\nfrom yafdp.cli import main\ncode = main(sys.argv[1:])\n"
              "print('pandas imported' if 'pandas' in sys.modules else 'no pandas')\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script, "run", "--orders", "600", "--arrival-rate", "60", "--out",
                             str(out), "--latency-model", "aws-eu-west-1", "--quota-scale", "0.01"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    simulation = json.loads((out / "summary.json").read_text())["simulation"]
    saga = end_to_end(load_run(out))["saga_s"].dropna() * 1000
    finished = len(saga)
    assert 0 < finished < 600  # the orders whose request PutEvents refused, throttled, never started
    assert simulation["saga_ms"] == {"orders": finished, "p50": round(saga.quantile(0.5), 1),
                                     "p99": round(saga.quantile(0.99), 1)}
    assert f"saga end to end (simulated): p50 {saga.quantile(0.5):,.1f} ms, p99 {saga.quantile(0.99):,.1f} ms over the " \
           f"{finished} orders that reached their end" in lines
    assert (f"given up: {simulation['put_events_refused']:,} PutEvents requests throttled past the producer's "
            f"retries, {simulation['invocations_expired']:,} invocations held past the target's maximum event age") in lines
    assert simulation["invocations_throttled"] > 1000 and simulation["cold_starts"] > 0
    assert (f"Lambda: {simulation['cold_starts']:,} cold starts, {simulation['waited_for_an_environment']:,} deliveries "
            f"waited for an execution environment; throttled: {simulation['put_events_throttled']:,} PutEvents "
            f"requests, {simulation['invocations_throttled']:,} invocations") in lines
    assert lines[-1] == "no pandas"


def test_a_held_back_delivery_does_not_hold_back_the_others_on_the_simulated_clock(tmp_path):
    """A reordered delivery is late by up to five seconds; the deliveries not held back cross their hop as usual.
    (The invocation quota is a first-come queue: asked for a try seconds ahead, it used to queue every other
    event's invocation behind it, so on the simulated clock every hop took seconds and nothing was reordered.)"""
    from yafdp.runtime.faults import Faults, decide

    def latencies(reorder_rate: float) -> dict:
        out = tmp_path / f"reorder-{reorder_rate}"
        run_saga(RunOptions(orders=20, seed=21, out=str(out), latency_model="aws-eu-west-1",
                            faults=Faults(reorder_rate=reorder_rate)))
        hops = hop_latency(load_run(out))
        return {(event_id, rule): latency for event_id, rule, latency in
                zip(hops["event_id"], hops["rule"], hops["latency_s"])}

    faults = Faults(reorder_rate=0.5)
    held = latencies(0.5)
    on_time = [latency for (event_id, rule), latency in held.items()
               if not decide(faults, 21, event_id, rule.removeprefix("yafdp-")).late_seconds]
    assert len(on_time) > len(held) / 4
    assert max(on_time) < max(latencies(0.0).values()) * 2  # about a hop's time, not the seconds of a held one
