"""The package imports without PyTorch (CI has none) and says clearly what is missing."""
import unittest

from _support import run_python

# Setting sys.modules["torch"] = None makes "import torch" fail even where PyTorch is installed.
NO_TORCH = "import sys; sys.modules['torch'] = None\n"


class ImportWithoutTorch(unittest.TestCase):
    def test_pure_python_modules_import(self):
        result = run_python(NO_TORCH + (
            "import nccl_moe, nccl_moe.structs, nccl_moe.library, nccl_moe.shapes, nccl_moe.comm\n"
            "import nccl_moe.errors, nccl_moe.megatron\n"
            "print(nccl_moe.__version__)\n"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "0.1.0")

    def test_fused_a2a_reports_missing_torch(self):
        result = run_python(NO_TORCH + (
            "import nccl_moe\n"
            "try:\n"
            "    import nccl_moe.fused_a2a\n"
            "except nccl_moe.TorchNotAvailableError as error:\n"
            "    print('ERROR', error)\n"
            "    assert isinstance(error, ImportError)\n"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("ERROR nccl_moe.fused_a2a needs PyTorch", result.stdout)
        self.assertIn("pip install torch", result.stdout)

    def test_megatron_install_reports_missing_torch(self):
        result = run_python(NO_TORCH + (
            "import nccl_moe.megatron\n"
            "try:\n"
            "    nccl_moe.megatron.install()\n"
            "except ImportError as error:\n"
            "    print('ERROR', error)\n"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("needs PyTorch", result.stdout)

    def test_import_does_not_load_the_library(self):
        result = run_python(NO_TORCH + (
            "import nccl_moe, nccl_moe.comm\n"
            "from nccl_moe.library import mapped_libraries\n"
            "print(len(mapped_libraries('libnccl_moe.so')))\n"),
            env={"NCCL_MOE_LIBRARY": "/nonexistent/libnccl_moe.so"})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "0")


if __name__ == "__main__":
    unittest.main()
