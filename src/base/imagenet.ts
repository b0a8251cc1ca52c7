// ImageNet's per-channel mean and std (RGB, pixels in [0, 1]): the normalization torchvision's
// pretrained weights expect, shared by the transforms (data) and the weight sets (models).
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
