"""QLoRA (Dettmers et al., 2023): LoRA over a frozen base stored in 4-bit NormalFloat (bitsandbytes),
with double quantization of the scaling constants and a paged AdamW.

bitsandbytes' 4-bit kernels need CUDA; on other machines the run stops before anything loads.
Export merges the adapter into the base loaded in full precision, never into 4-bit weights.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field
from torch import nn

from tunesmith.errors import UserError
from tunesmith.methods.lora import LoraConfig, LoraMethod
from tunesmith.sections import MethodSection

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


class QloraConfig(LoraConfig):
    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type of the frozen base")
    double_quant: bool = Field(True, description="quantize the quantization constants too")
    paged_optimizer: bool = Field(True, description="bitsandbytes paged AdamW (spills to CPU under pressure)")


class QloraMethod(LoraMethod):
    name = "qlora"
    config: type[MethodSection] = QloraConfig
    shardable = False  # bitsandbytes' 4-bit weights are not sharded by FSDP2 here

    def check_environment(self, cfg: RunConfig) -> None:
        if not torch.cuda.is_available():
            raise UserError(
                "method.name: qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and none is visible; "
                "use method.name: lora on this machine"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("method.name: qlora needs bitsandbytes: pip install 'tunesmith[qlora]'")

    def load_kwargs(self, cfg: Any) -> dict[str, Any]:
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=cfg.quant_type,
            bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=compute,
        )
        return {"quantization_config": quantization, "device_map": {"": torch.cuda.current_device()}}

    def apply(self, model: nn.Module, cfg: Any) -> nn.Module:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # type: ignore[arg-type]
        return super().apply(model, cfg)

    def optimizer_class(self, cfg: Any) -> type[torch.optim.Optimizer]:
        if not cfg.paged_optimizer:
            return torch.optim.AdamW
        from bitsandbytes.optim import PagedAdamW  # type: ignore[import-not-found]

        return PagedAdamW  # type: ignore[no-any-return]
