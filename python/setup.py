"""The build step of the ablate package.

Two things are made at build time from the repository around this folder, so that each has one
source: the gRPC stubs, generated from ../proto by grpcio-tools into the package `ablate.v1`
(the proto package ablate.v1 maps onto it), and `ablate/prepare.py`, which is
../scripts/prepare_data.py itself.

The stubs' runtime needs grpcio and protobuf within the range the generator declares for its
output, so the package requires exactly what the installed grpcio-tools requires of them.
"""

import pathlib
import shutil
from importlib import metadata

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent / "proto"
PREPARE_SCRIPT = HERE.parent / "scripts" / "prepare_data.py"


def runtime_requirements():
    """pandas, and grpcio and protobuf as grpcio-tools (the generator) requires them."""
    generator = [r for r in metadata.requires("grpcio-tools")
                 if r.split("<")[0].split(">")[0].strip() in ("grpcio", "protobuf")]
    return ["pandas>=2.0", *generator]


def generate_stubs(out):
    """Writes ablate/v1/*_pb2.py and *_pb2_grpc.py under `out` from every .proto file."""
    from grpc_tools import protoc
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "ablate").rglob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT}: build from an Ablate checkout")
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out}",
            f"--pyi_out={out}", f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_ROOT}")
    (out / "ablate" / "v1" / "__init__.py").touch()


class BuildPyWithGenerated(build_py):
    def run(self):
        out = pathlib.Path(self.build_lib)
        # An in-tree build reuses build/lib: a module since removed from the sources must not
        # ship from an earlier build.
        shutil.rmtree(out / "ablate", ignore_errors=True)
        super().run()
        generate_stubs(out)
        shutil.copyfile(PREPARE_SCRIPT, out / "ablate" / "prepare.py")


setup(install_requires=runtime_requirements(), cmdclass={"build_py": BuildPyWithGenerated})
