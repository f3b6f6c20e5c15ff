"""A cluster scenario prints the wall its machine's cores allow: every process's CPU per item
there times N, over the cores."""

from __future__ import annotations

from benchmarks.run import cores_floor_rows


def _result(**extra) -> dict:
    return {
        "items": 1000,
        "wall_s": 16.0,
        "cores": 2,
        "worker_cpu_ms_per_item": 16.0,
        "web_cpu_ms_per_item": 0.5,
        "simulators_cpu_ms_per_item": 6.0,
        "bench_loop_cpu_ms_per_item": 0.7,
        **extra,
    }


def test_the_cores_floor_adds_every_process_on_the_machine():
    [(name, value)] = cores_floor_rows(
        _result(services_cpu_ms_per_item={"PostgreSQL": 7.7, "Redis": 0.9})
    )
    assert name == "  floor of the cores: all CPU per item x N / cores"
    assert value == "31.8 ms x 1,000 / 2 = 15.9 s, wall/floor = 1.01"


def test_without_servers_on_the_machine_the_floor_is_the_control_plane_and_simulators():
    [(_, value)] = cores_floor_rows(_result())
    assert value == "23.2 ms x 1,000 / 2 = 11.6 s, wall/floor = 1.38"


def test_a_result_without_its_cores_has_no_floor_of_them():
    assert cores_floor_rows(_result(cores=None)) == []
