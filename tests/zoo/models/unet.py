"""A U-Net in the style of milesial/Pytorch-UNet: DoubleConv blocks, max-pool downsampling, bilinear or
transposed-convolution upsampling with F.pad to the skip's size and torch.cat skips, plus a
decoder variant that resizes with F.interpolate; trained with cross-entropy plus a Dice loss."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    """Downscaling with maxpool then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(
            nn.MaxPool2d(2),
            DoubleConv(in_channels, out_channels)
        )

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upscaling then double conv"""

    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()

        # if bilinear, use the normal convolutions to reduce the number of channels
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        # input is CHW
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]

        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2,
                        diffY // 2, diffY - diffY // 2])
        # if you have padding issues, see
        # https://github.com/HaiyongJiang/U-Net-Pytorch-Unstructured-Buggy/commit/0e854509c2cea854e247a9c615f175f76fbb2e3a
        # https://github.com/xiaopeng-liao/Pytorch-UNet/commit/8ebac70e633bac59fc22bb5195e513d5832fb3bd
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class InterpolateUp(nn.Module):
    """Resize to the skip connection's exact size with F.interpolate, then fuse."""

    def __init__(self, in_channels, skip_channels, out_channels, mode="bilinear"):
        super().__init__()
        self.mode = mode
        self.conv = DoubleConv(in_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        if self.mode == "nearest":
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
        else:
            x = F.interpolate(x, size=skip.shape[-2:], mode=self.mode, align_corners=False)
        return self.conv(torch.cat((skip, x), dim=1))


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super(OutConv, self).__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False, base=64):
        super(UNet, self).__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear

        self.inc = (DoubleConv(n_channels, base))
        self.down1 = (Down(base, base * 2))
        self.down2 = (Down(base * 2, base * 4))
        factor = 2 if bilinear else 1
        self.down3 = (Down(base * 4, base * 8 // factor))
        self.up1 = (Up(base * 8, base * 4 // factor, bilinear))
        self.up2 = (Up(base * 4, base * 2 // factor, bilinear))
        self.up3 = (Up(base * 2, base, bilinear))
        self.outc = (OutConv(base, n_classes))

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        logits = self.outc(x)
        return logits


class InterpolateUNet(nn.Module):
    """A two-level encoder-decoder whose decoder resizes with F.interpolate (odd sizes welcome)."""

    def __init__(self, n_channels, n_classes, base=4):
        super().__init__()
        self.inc = DoubleConv(n_channels, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4)
        self.up1 = InterpolateUp(base * 4, base * 2, base * 2, mode="bilinear")
        self.up2 = InterpolateUp(base * 2, base, base, mode="nearest")
        self.outc = OutConv(base, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        return self.outc(self.up2(self.up1(x3, x2), x1))


def dice_coeff(input: Tensor, target: Tensor, reduce_batch_first: bool = False, epsilon: float = 1e-6):
    # Average of Dice coefficient for all batches, or for a single mask
    assert input.size() == target.size()
    assert input.dim() == 3 or not reduce_batch_first

    sum_dim = (-1, -2) if input.dim() == 2 or not reduce_batch_first else (-1, -2, -3)

    inter = 2 * (input * target).sum(dim=sum_dim)
    sets_sum = input.sum(dim=sum_dim) + target.sum(dim=sum_dim)
    sets_sum = torch.where(sets_sum == 0, inter, sets_sum)

    dice = (inter + epsilon) / (sets_sum + epsilon)
    return dice.mean()


def multiclass_dice_coeff(input: Tensor, target: Tensor, reduce_batch_first: bool = False, epsilon: float = 1e-6):
    # Average of Dice coefficient for all classes
    return dice_coeff(input.flatten(0, 1), target.flatten(0, 1), reduce_batch_first, epsilon)


def dice_loss(input: Tensor, target: Tensor, multiclass: bool = False):
    # Dice loss (objective to minimize) between 0 and 1
    fn = multiclass_dice_coeff if multiclass else dice_coeff
    return 1 - fn(input, target, reduce_batch_first=True)


class TwoUNets(nn.Module):
    def __init__(self):
        super().__init__()
        self.transposed = UNet(n_channels=3, n_classes=3, bilinear=False, base=4)
        self.bilinear = UNet(n_channels=3, n_classes=3, bilinear=True, base=4)
        self.interpolating = InterpolateUNet(n_channels=3, n_classes=3, base=4)

    def forward(self, image, odd_image):
        return self.transposed(image) + self.bilinear(image), self.interpolating(odd_image)


def segmentation_loss(masks_pred, true_masks, n_classes):
    criterion = nn.CrossEntropyLoss()
    loss = criterion(masks_pred, true_masks)
    loss += dice_loss(
        F.softmax(masks_pred, dim=1).float(),
        F.one_hot(true_masks, n_classes).permute(0, 3, 1, 2).float(),
        multiclass=True
    )
    return loss


def make_model():
    return TwoUNets()


def loss_fn(model, image, odd_image, true_masks, odd_masks):
    masks_pred, odd_pred = model(image, odd_image)
    return segmentation_loss(masks_pred, true_masks, 3) + segmentation_loss(odd_pred, odd_masks, 3)


def example_batch():
    torch.manual_seed(0)
    image, odd_image = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 13, 11)
    true_masks, odd_masks = torch.randint(0, 3, (2, 16, 16)), torch.randint(0, 3, (2, 13, 11))
    return image, odd_image, true_masks, odd_masks


def example_inputs():
    return example_batch()[:2]
