"""The VLA policy's model, one concern a file (as LeRobot keeps one folder per policy):

    configuration.py  ModelConfig (every setting, validated), the named sizes, ModelSettings
    modeling.py       VLAModel: frames + instruction + state -> action-token logits
    processor.py      observations -> the model's inputs, one way for training and serving
    keypoints.py      language-conditioned spatial keypoints (the heat maps)
    vision.py         the vision encoder (conv stem + ViT)
    trunk.py          the Transformer trunk (ours); hf_trunk.py: a causal LM as the trunk
    surgery.py        giving a trained model a new input (zero-initialised)

Checkpoint and adapter I/O live beside this folder (policies/checkpoint.py, adapters.py);
the refusal score is policies/presence.py; grounding pretraining is policies/grounding.py.
"""
