#!/usr/bin/env python3
"""A scripted stand-in for `repa-train run --events stdio` used by the window's tests.

It speaks the worker's event protocol (JSON lines on stdout, commands as JSON lines on stdin) so the run
controller can be tested without training anything. Behaviour is chosen with environment variables:
  FAKE_WORKER_STEP_SECONDS  seconds per step (default 0.02)
  FAKE_WORKER_MODE          normal | hang:N (stop talking after step N) | fail:N (error event, exit 3)
                            | abort:N (SIGABRT itself)
"""
import json, os, select, signal, struct, sys, time, zlib


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def write_png(path, width=8, height=8):
    rows = b"".join(b"\x00" + b"".join(bytes([(x * 32) % 256, (y * 32) % 256, 128]) for x in range(width))
                    for y in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    with open(path + ".tmp", "wb") as f:
        f.write(png)
    os.replace(path + ".tmp", path)


def main():
    args = sys.argv[1:]
    config = json.load(open(args[args.index("--config") + 1]))
    max_steps = int(config.get("max_train_steps") or 50)
    run_dir = config.get("output_dir") or "."
    os.makedirs(os.path.join(run_dir, "samples"), exist_ok=True)
    step_seconds = float(os.environ.get("FAKE_WORKER_STEP_SECONDS", "0.02"))
    mode, _, at = os.environ.get("FAKE_WORKER_MODE", "normal").partition(":")
    at = int(at or 0)
    start_step = 0
    if config.get("resume_from_checkpoint") == "latest" and os.path.exists(os.path.join(run_dir, "checkpoint.json")):
        start_step = json.load(open(os.path.join(run_dir, "checkpoint.json")))["step"]

    emit({"type": "state", "state": "starting"})
    emit({"type": "run_started", "schema": 1, "run_dir": run_dir, "device": "cpu", "max_train_steps": max_steps,
          "step": start_step, "config": config})
    emit({"type": "state", "state": "running"})
    paused, step, t0 = False, start_step, time.time()
    last_beat = 0.0
    while step < max_steps:
        ready, _, _ = select.select([sys.stdin], [], [], step_seconds)
        if ready:
            line = sys.stdin.readline()
            if not line:
                break
            command = json.loads(line).get("command")
            emit({"type": "log", "level": "info", "message": "command " + str(command)})
            if command == "pause":
                paused = True
                emit({"type": "state", "state": "paused"})
            elif command == "resume":
                paused = False
                emit({"type": "state", "state": "running"})
            elif command == "stop":
                emit({"type": "state", "state": "stopping"})
                json.dump({"step": step}, open(os.path.join(run_dir, "checkpoint.json"), "w"))
                emit({"type": "checkpoint", "step": step, "path": os.path.join(run_dir, "checkpoint.json")})
                emit({"type": "state", "state": "finished", "reason": "stopped", "step": step})
                return 0
            elif command == "sample":
                path = os.path.join("samples", "step_%06d.png" % step)
                write_png(os.path.join(run_dir, path))
                emit({"type": "sample", "step": step, "path": path})
            elif command == "checkpoint":
                json.dump({"step": step}, open(os.path.join(run_dir, "checkpoint.json"), "w"))
                emit({"type": "checkpoint", "step": step, "path": os.path.join(run_dir, "checkpoint.json")})
        if mode == "hang" and step >= at:
            continue  # alive, silent: no heartbeat
        if time.time() - last_beat > 0.2:
            emit({"type": "heartbeat", "step": step})
            last_beat = time.time()
        if paused:
            continue
        if mode == "fail" and step >= at:
            emit({"type": "error", "message": "loss is NaN at step %d" % step})
            emit({"type": "state", "state": "failed"})
            return 3
        if mode == "abort" and step >= at:
            sys.stderr.write("terminate called after throwing an instance of 'c10::Error'\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGABRT)
        step += 1
        weight = 0.5 if step < max_steps * 0.6 else 0.0
        diffusion = 1.0 / (1.0 + 0.05 * step)
        score = 0.1 + 0.8 * (1 - 1.0 / (1.0 + 0.1 * step))
        emit({"type": "metrics", "step": step, "wall_time": time.time() - t0, "loss": diffusion - weight * score,
              "diffusion_loss": diffusion, "crepa_loss": -weight * score, "crepa_alignment_score": score,
              "crepa_weight": weight, "crepa_alignment_score_ema": score * 0.95, "lr": 1e-4, "grad_norm": 1.0 + 0.1 * (step % 7),
              "images_per_sec": 100.0, "step_time_ms": step_seconds * 1000, "memory_bytes": 123 * 1024 * 1024})
        if step % 10 == 0:
            json.dump({"step": step}, open(os.path.join(run_dir, "checkpoint.json"), "w"))
            emit({"type": "checkpoint", "step": step, "path": os.path.join(run_dir, "checkpoint.json")})
    emit({"type": "state", "state": "finished", "reason": "completed", "step": step})
    return 0


if __name__ == "__main__":
    sys.exit(main())
