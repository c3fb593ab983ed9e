"""The package as pip built it: stubs generated from proto/ (not copies), ablate.prepare being
scripts/prepare_data.py itself, and both console entry points runnable."""

import pathlib
import shutil
import subprocess
import unittest

import ablate
import ablate.prepare
from ablate.v1 import sweep_service_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]


class PackageTest(unittest.TestCase):
    def test_stubs_follow_the_proto_files(self):
        proto = (ROOT / "proto" / "ablate" / "v1" / "sweep_service.proto").read_text()
        service = sweep_service_pb2.DESCRIPTOR.services_by_name["SweepService"]
        for method in service.methods:
            self.assertIn(f"rpc {method.name}(", proto)
        self.assertEqual(proto.count("  rpc "), len(service.methods))

    def test_prepare_is_the_repository_script(self):
        script = ROOT / "scripts" / "prepare_data.py"
        self.assertEqual(pathlib.Path(ablate.prepare.__file__).read_bytes(), script.read_bytes())

    def test_console_entry_points_run(self):
        for program, flag in (("ablate-prepare", "--tokenizer"), ("ablate-export", "--format")):
            path = shutil.which(program)
            self.assertIsNotNone(path, f"{program} is not on PATH")
            done = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn(flag, done.stdout)


if __name__ == "__main__":
    unittest.main()
