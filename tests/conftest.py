import pytest

pytest.register_assert_rewrite("evalport.testing")
