"""The coordinator's gRPC server reflection and health service, through grpcio's own
reflection client and health stubs: both answer without a token (coordinator/server.cc says
why), while the sweep methods they describe still refuse a call without one."""

import unittest

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase)

import ablate
from cluster import Cluster


class ReflectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        cls.channel = grpc.insecure_channel(cls.cluster.address)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.cluster.close()

    def test_lists_every_service_without_a_token(self):
        services = set(ProtoReflectionDescriptorDatabase(self.channel).get_services())
        self.assertEqual(services, {"ablate.v1.SweepService", "ablate.v1.WorkerService",
                                    "grpc.health.v1.Health",
                                    "grpc.reflection.v1alpha.ServerReflection"})

    def test_describes_methods_and_messages(self):
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(self.channel))
        service = pool.FindServiceByName("ablate.v1.SweepService")
        self.assertIn("WatchSweep", service.methods_by_name)
        submit = service.methods_by_name["SubmitSweep"]
        self.assertEqual(submit.input_type.full_name, "ablate.v1.SubmitSweepRequest")
        self.assertEqual(submit.input_type.fields_by_name["sweep_file"].number, 460)
        job = pool.FindMessageTypeByName("ablate.v1.Job")
        self.assertEqual(job.fields_by_name["provenance"].message_type.full_name,
                         "ablate.v1.Provenance")

    def test_health_answers_without_a_token(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "ablate.v1.SweepService", "ablate.v1.WorkerService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            self.assertEqual(answer.status, health_pb2.HealthCheckResponse.SERVING, service)
        with self.assertRaises(grpc.RpcError) as refused:
            health.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=10)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_the_methods_described_still_need_a_token(self):
        with ablate.Client(self.cluster.address, token="") as client:
            with self.assertRaises(ablate.Unauthenticated) as refused:
                client.sweeps()
        self.assertIn("viewer or user", refused.exception.message)


if __name__ == "__main__":
    unittest.main()
