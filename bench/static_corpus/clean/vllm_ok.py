# ruff: noqa
from vllm import LLM, SamplingParams

llm = LLM(model="Qwen/Qwen2.5-7B-Instruct", gpu_memory_utilization=0.9, tensor_parallel_size=2, seed=0)
greedy = SamplingParams(temperature=0.0, max_tokens=512)
sampled = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=512, n=4)
for o in llm.generate(prompts, greedy):
    print(o.outputs[0].text)
