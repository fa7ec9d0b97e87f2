# ruff: noqa
from vllm import LLM, SamplingParams

llm = LLM(model="Qwen/Qwen2.5-7B-Instruct", gpu_memory_utilization=0.99, tensor_parallel_size=2)  # expect: LC901
params = SamplingParams(temperature=0, top_p=0.9)  # expect: LC902, LC904
outputs = llm.generate(prompts, params)
for o in outputs:
    print(o.outputs[0].text)
