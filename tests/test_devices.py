"""Devices (issue 29): latency measured where the model will run. A real SSH server on the loopback address
(tests/sshd.py), a command device that runs edgeprune's runner pinned to one core, named devices in a file,
budgets that name a device, one-line errors when a device cannot be used; nothing written then."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import edgeprune
from edgeprune import data as data_lib
from edgeprune import devices, models
from edgeprune.devices import runner
from edgeprune.devices.command import read_time
from edgeprune.errors import ConfigError, DamagedFileError, DeviceError
from edgeprune.export.onnx import export_onnx
from edgeprune.measure.budget import parse

SHAPE = (1, 8, 8)


@pytest.fixture(autouse=True)
def device_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_DEVICES", str(tmp_path / "devices.json"))
    return tmp_path / "devices.json"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A wide and a narrow conv net as ONNX files: the narrow one is faster."""
    folder = tmp_path_factory.mktemp("onnx")
    out = []
    for width in (64, 4):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.Flatten(),
                                  torch.nn.Linear(width * 64, 10))
        export_onnx(net, folder / f"w{width}.onnx", input_shape=SHAPE)
        out.append(folder / f"w{width}.onnx")
    return out


@pytest.fixture
def server(tmp_path):
    from sshd import ssh_server

    with ssh_server(tmp_path) as running:
        yield running


def _ssh(server, **options):
    return devices.SshDevice(server.url, key=server.key, known_hosts=server.known_hosts,
                             **{"python": sys.executable, **options})


def test_runner_times_files_in_alternation_and_prints_one_json_line(files):
    done = subprocess.run([sys.executable, runner.__file__, "--shape", "1,8,8", "--rounds", "4", "--warmup", "1",
                           str(files[0]), str(files[1]), str(files[0])], capture_output=True, text=True, check=True)
    out = json.loads(done.stdout)
    assert [len(t) for t in out["times_ms"]] == [4, 4, 4] and out["runtime"] == "onnxruntime" and out["cores"] >= 1
    bad = subprocess.run([sys.executable, runner.__file__, "--shape", "1,8,8", "nope.onnx"], capture_output=True, text=True)
    assert bad.returncode == 2 and "\n" not in bad.stdout.strip() and "nope.onnx" in json.loads(bad.stdout)["error"]


def test_the_runner_runs_alternating_files_in_blocks_long_enough_to_run_warm(monkeypatch):
    counts = {"slow": 0, "fast": 0}

    def fake(path, shape, batch, threads):
        def call():
            counts[path] += 1
            time.sleep(0.011 if path == "slow" else 0.0005)
        return call

    monkeypatch.setitem(runner.CALLS, "onnxruntime", fake)
    out = runner.time_files(["slow", "fast"], "onnxruntime", (1,), rounds=3, warmup=1, block_ms=10.0)
    assert counts["slow"] == 1 + 3 and counts["fast"] >= 1 + 3 * 5 and max(out["times_ms"][1]) < 5.0
    counts.update(slow=0, fast=0)
    runner.time_files(["fast"], "onnxruntime", (1,), rounds=3, warmup=1)  # one file: one call per round
    assert counts["fast"] == 1 + 3


def test_host_device_pairs_two_files(files):
    host = devices.get("host")
    timed = host.paired(files[0], files[1], SHAPE, runs=10)
    assert timed["ratio"] > 1.0  # the wide net is the slower one
    assert "onnxruntime" in host.check()["runtimes"]


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_command_device_runs_the_runner_pinned_to_one_core(files):
    devices.add("pinned", "cmd:taskset -c 0 {python} {runner} --shape {shape} --batch {batch} --threads {threads} "
                "--rounds 20 --warmup 2 {model}", rounds=2)
    wide, narrow = devices.get("pinned").time(files, SHAPE, rounds=99)
    assert len(wide) == len(narrow) == 2  # a command device runs its own rounds; each run times many calls
    assert min(wide) > max(narrow)


@pytest.mark.parametrize("text, ms", [("Average inference time cost: 0.0254 ms", 0.0254), ("took 420 us\n", 0.42),
                                      ('{"median_ms": 1.5}', 1.5), ('noise\n{"times_ms": [[3, 1, 2]]}', 2.0),
                                      ("0.002 s", 2.0)])
def test_a_command_device_reads_the_time_its_command_prints(text, ms):
    assert read_time("dev", text) == pytest.approx(ms)


@pytest.mark.parametrize("template, error, message", [
    ("false {model}", DeviceError, "the command exited with 1"),
    ("echo ready {model}", DeviceError, "no time in the command's output"),
    ("echo {secret} {model}", ConfigError, "unknown placeholder 'secret'"),
    ("echo 1 ms", ConfigError, "must contain {model}"),
])
def test_a_command_device_that_cannot_time_is_one_line(template, error, message, files):
    with pytest.raises(error, match=message) as exc:
        devices.get(f"cmd:{template}").latency(files[1], SHAPE)
    assert "\n" not in str(exc.value)


def test_ssh_device_times_on_the_server_and_copies_each_file_once(server, files):
    device = _ssh(server)
    assert device.paired(files[0], files[1], SHAPE, runs=5)["ratio"] > 1.0
    assert "onnxruntime" in device.check()["runtimes"]
    device.latency(files[0], SHAPE, runs=3)
    folder = device._folder
    assert Path(folder).is_dir() and len(list(Path(folder).iterdir())) == 3  # the runner and two files
    runs = [c for c in server.commands if "runner.py" in c]
    assert len(runs) == 3  # one connection, one runner process per timing
    device.close()
    assert not Path(folder).exists()


def test_an_ssh_device_that_cannot_be_used_is_one_line(server, tmp_path, files):
    (tmp_path / "empty_known_hosts").write_text("")
    untrusted = devices.SshDevice(server.url, key=server.key, known_hosts=str(tmp_path / "empty_known_hosts"))
    with pytest.raises(DeviceError, match="is unreachable at 127.0.0.1.*Host key is not trusted"):
        untrusted.latency(files[1], SHAPE)
    with pytest.raises(DeviceError, match="has no 'no-such-python'"):
        _ssh(server, python="no-such-python").latency(files[1], SHAPE)
    port = server.url.rsplit(":", 1)[1]
    server_gone = devices.SshDevice(f"ssh://nobody@127.0.0.1:{int(port) + 1 if int(port) < 65535 else 1}", connect_timeout=2)
    with pytest.raises(DeviceError, match="is unreachable"):
        server_gone.check()
    for bad in ("ssh://", "ssh://host:99999", "ssh://host/path"):
        with pytest.raises(ConfigError, match="allowed: ssh://user@host"):
            devices.get(bad)


def test_named_devices_are_saved_listed_and_removed(device_file, server):
    devices.add("lab", server.url, threads=2, key=server.key, known_hosts=server.known_hosts, python=sys.executable)
    devices.add("pinned", "cmd:taskset -c 0 {python} {runner} --shape {shape} {model}", rounds=3)
    assert sorted(devices.named()) == ["lab", "pinned"]
    lab = devices.get("lab")
    assert (lab.kind, lab.threads, lab.url) == ("ssh", 2, server.url)
    assert devices.get("pinned").rounds == 3 and devices.get("lab", threads=1).threads == 1
    devices.remove("pinned")
    assert list(devices.named()) == ["lab"]
    with pytest.raises(ConfigError, match="unknown device 'pi9'; known: host, lab"):
        devices.get("pi9")


@pytest.mark.parametrize("name", ["host", "b4", "Pi", "9pi", "int8", "a b"])
def test_a_device_name_a_budget_could_not_say_is_refused(name, device_file):
    with pytest.raises(ConfigError, match=f"device name {name!r} is not allowed"):
        devices.add(name, "cmd:echo 1 ms {model}")
    assert not device_file.exists()


def test_a_bad_device_entry_is_refused_before_anything_is_written(device_file):
    with pytest.raises(ConfigError, match="must contain {model}"):
        devices.add("pi", "cmd:echo 1 ms")
    with pytest.raises(ConfigError, match="option 'colour' is not allowed"):
        devices.add("pi", "host", colour="red")
    assert not device_file.exists()
    device_file.write_text("[1, 2]")
    with pytest.raises(DamagedFileError):
        devices.named()


def test_budgets_name_a_device():
    budget = parse("latency<=50%@pi5@b4")
    assert (budget.device, budget.batch, budget.relative, budget.quantity) == ("pi5", 4, True, "ort_latency_ms_b4_pi5")
    assert parse("latency<=2ms@host").device is None and parse("latency<=2ms").device is None
    assert parse("latency<=2ms@executorch@pi5").quantity == "et_latency_ms_b1_pi5"
    with pytest.raises(ConfigError, match="@pi5 does not apply to size"):
        parse("size<=1MB@pi5")


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits")


def _vit():
    torch.manual_seed(0)
    return models.create("vit", num_classes=10, in_channels=1, image_size=8)


@pytest.mark.slow
def test_prune_meets_a_latency_budget_on_an_ssh_device(server, digits):
    devices.add("lab", server.url, key=server.key, known_hosts=server.known_hosts, python=sys.executable)
    pruned = edgeprune.prune(_vit(), digits, method="vbp", budget="latency<=90%@lab", finetune=0)
    calibrated = pruned.record["decided"]["calibrated"]
    assert calibrated["budget"] == "latency<=90%@lab" and pruned.record["budget_achieved"] <= calibrated["limit"]
    assert any("runner.py" in c for c in server.commands)


def test_an_unknown_or_unreachable_device_in_a_budget_stops_before_any_work(digits, tmp_path):
    with pytest.raises(ConfigError, match="unknown device 'pi5'"):
        edgeprune.sweep(_vit(), digits, method="vbp", budgets=["latency<=90%@pi5"], out=tmp_path / "run")
    devices.add("gone", "ssh://nobody@127.0.0.1:1", connect_timeout=2)
    with pytest.raises(DeviceError, match="device 'gone' is unreachable"):
        edgeprune.sweep(_vit(), digits, method="vbp", budgets=["latency<=90%@gone"], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_cli_adds_checks_lists_and_removes_a_device_and_benches_on_it(run_cli, server, files, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_cli("devices", "add", "lab", server.url, "--key", server.key, "--known-hosts", server.known_hosts,
                             "--python", sys.executable)
    assert code == 0 and "saved device 'lab'" in out, err
    code, out, err = run_cli("devices", "check", "lab", "--runs", "3")
    assert code == 0 and "onnxruntime" in out and "reference model" in out, err
    code, out, err = run_cli("bench", str(files[1]), "--device", "lab", "--batch", "1,4", "--runs", "3", "--json",
                             tmp_path / "bench.json")
    assert code == 0 and "on device lab" in " ".join(out.split()), err
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [r["batch_size"] for r in saved["results"]] == [1, 4] and saved["device"]["kind"] == "ssh"
    code, out, _ = run_cli("devices", "list")
    assert "lab" in out and server.url in out
    assert run_cli("devices", "remove", "lab")[0] == 0 and "lab" not in devices.named()


def test_the_cli_writes_a_latency_table_timed_over_ssh(run_cli, server, tmp_path):
    devices.add("lab", server.url, key=server.key, known_hosts=server.known_hosts, python=sys.executable)
    code, out, err = run_cli("devices", "table", "resnet20", "--device", "lab", "--in-channels", "1", "--image-size", "8",
                             "--out", tmp_path / "table.json")
    assert code == 0 and "held-out error" in out, err
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["device"]["kind"] == "ssh" and saved["error"]["held_out"] and saved["_sha256"]
    assert len(saved["layers"]) == 22  # ResNet-20: 19 convolutions, 2 shortcut projections, the classifier


@pytest.mark.parametrize("args, message", [
    (("devices", "check", "pi9"), "unknown device 'pi9'"),
    (("devices", "table", "resnet20", "--device", "pi9"), "unknown device 'pi9'"),
    (("devices", "table", "resnet20", "--batch", "0"), "--batch must be > 0"),
    (("devices", "table", "resnet20", "--runtime", "tensorrt"), "--runtime 'tensorrt' is not allowed; allowed: onnxruntime"),
    (("prune", "vbp", "--model", "vit", "--dataset", "digits", "--edge-device", "pi9", "--out", "never"),
     "unknown device 'pi9'"),
    (("devices", "add", "host", "cmd:echo 1 ms {model}"), "device name 'host' is not allowed"),
    (("devices", "add", "pi", "ftp://pi"), "device spec 'ftp://pi' is not allowed"),
    (("devices", "remove", "pi"), "no device named 'pi'"),
    (("bench", "model.onnx", "--device", "pi9"), "unknown device 'pi9'"),
])
def test_cli_device_mistakes_are_one_line_exit_2(run_cli, args, message, device_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not device_file.exists() and not (tmp_path / "never").exists()


@pytest.fixture
def onnx_only(monkeypatch):
    """The edge report's runtime table cut to ONNX Runtime, the devices' runtime here (every runtime and INT8 are
    tests/test_report_edge.py's)."""
    from edgeprune.export import runtimes as runtimes_lib

    monkeypatch.setattr(runtimes_lib, "RUNTIMES", runtimes_lib.RUNTIMES[:1])


@pytest.mark.slow
def test_a_sweeps_edge_report_times_on_the_device_it_names(digits, tmp_path, onnx_only):
    devices.add("here", "host")
    result = edgeprune.sweep(_vit(), digits, method="vbp", budgets=[0.3], finetune=0, out=tmp_path / "run",
                             edge_report="here", progress=False)
    edge = result.summary["edge"]["device"]
    assert edge["name"] == "here" and edge["input_ms_b1"] > 0 and edge["speedup_b1"] > 0


@pytest.mark.slow
def test_a_sweep_under_a_device_budget_reports_it_and_its_edge_report_times_on_a_device(digits, tmp_path, server, run_cli,
                                                                                       onnx_only):
    devices.add("here", "host")  # this machine under a name: the device path without a network
    result = edgeprune.sweep(_vit(), digits, method="vbp", budgets=["latency<=90%@here"], finetune=0, out=tmp_path / "run")
    record = next(r for r in result.records if r.get("kind") == "candidate")
    assert record["budget_text"] == "latency<=90%@here" and record["budget_name"] == "ort_latency_ms_b1_here"
    assert record["budget_achieved"] <= record["decided"]["calibrated"]["limit"]
    assert "latency<=90%@here" in (tmp_path / "run" / "report.md").read_text()
    devices.add("lab", server.url, key=server.key, known_hosts=server.known_hosts, python=sys.executable)
    code, _, err = run_cli("report", tmp_path / "run", "--edge", "--device", "lab")
    assert code == 0, err
    edge = json.loads((tmp_path / "run" / "summary.json").read_text())["edge"]["device"]
    assert edge["name"] == "lab" and edge["input_ms_b1"] > 0 and edge["speedup_b1"] > 0
    assert "On device **lab** (ssh, onnxruntime, 1 thread(s))" in (tmp_path / "run" / "report.md").read_text()
    assert run_cli("report", tmp_path / "run", "--device", "lab")[0] == 2  # --device needs --edge


@pytest.fixture(scope="module")
def ir_and_programs(tmp_path_factory):
    """The wide and the narrow net as OpenVINO IRs (.xml + .bin) and batch-1 LiteRT programs."""
    from edgeprune.export.et_latency import export_for

    folder = tmp_path_factory.mktemp("edge")
    out = {"openvino": [], "litert": []}
    for width in (64, 4):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.Flatten(),
                                  torch.nn.Linear(width * 64, 10)).eval()
        for runtime, suffix in (("openvino", ".xml"), ("litert", ".tflite")):
            export_for(net, folder / f"w{width}{suffix}", runtime, batch=1, input_shape=SHAPE)
            out[runtime].append(folder / f"w{width}{suffix}")
    return out


@pytest.mark.slow
def test_an_ssh_device_times_openvino_irs_and_litert_programs(server, ir_and_programs):
    device = _ssh(server)
    assert {"openvino", "litert"} <= set(device.check()["runtimes"])
    for runtime, (wide, narrow) in ir_and_programs.items():
        assert device.paired(wide, narrow, SHAPE, runs=5)["ratio"] > 1.0, runtime
    copied = sorted(p.suffix for p in Path(device._folder).iterdir())
    assert copied == [".bin", ".bin", ".py", ".tflite", ".tflite", ".xml", ".xml"]  # each IR's weights beside it
    with pytest.raises(DeviceError, match="fixed batch of 1; cannot time batch 4"):
        device.latency(ir_and_programs["litert"][1], SHAPE, batch=4)
    device.close()


@pytest.mark.slow
def test_an_openvino_budget_is_measured_on_an_ssh_device_and_bench_times_a_program_there(server, run_cli, ir_and_programs):
    """The budget layer exports for the runtime the budget names and times it on the device; a budget met by
    calibration is tested on the host (test_openvino) and over SSH in ONNX Runtime (above): the layer is the same."""
    from edgeprune.select.meter import Meter

    devices.add("lab", server.url, key=server.key, known_hosts=server.known_hosts, python=sys.executable)
    wide, narrow = (torch.nn.Sequential(torch.nn.Conv2d(1, w, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                        torch.nn.Linear(w * 64, 10)).eval() for w in (64, 4))
    meter = Meter(wide, torch.zeros(1, *SHAPE), latency_runs=5)
    budget = parse("latency<=90%@openvino@lab")
    assert 0 < meter.value(narrow, budget) < meter.dense_value(budget)
    assert any("--runtime openvino" in c for c in server.commands)
    code, out, err = run_cli("bench", str(ir_and_programs["litert"][1]), "--device", "lab", "--batch", "1", "--runs", "3")
    assert code == 0 and "litert" in out, err
