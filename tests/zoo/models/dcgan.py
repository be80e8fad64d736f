"""DCGAN in the style of pytorch/examples' dcgan/main.py: Generator and Discriminator as Sequential
stacks with an ngpu switch, a classname-based weights_init applied with model.apply, and the
discriminator/generator losses with BCELoss against torch.full label tensors."""
import torch
import torch.nn as nn
import torch.nn.parallel

nz, ngf, ndf, nc = 8, 4, 4, 3
real_label = 1
fake_label = 0


# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


class Generator(nn.Module):
    def __init__(self, ngpu):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 32 x 32
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output


class Discriminator(nn.Module):
    def __init__(self, ngpu):
        super(Discriminator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is (nc) x 32 x 32
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 16 x 16
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 8 x 8
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 4 x 4
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)

        return output.view(-1, 1).squeeze(1)


def make_model():
    netG = Generator(ngpu=1)
    netG.apply(weights_init)
    netD = Discriminator(ngpu=1)
    netD.apply(weights_init)
    return nn.ModuleDict({"netG": netG, "netD": netD})


def loss_fn(model, real_cpu, noise):
    """Both halves of one DCGAN iteration: errD = errD_real + errD_fake, then errG (summed here)."""
    netG, netD = model["netG"], model["netD"]
    criterion = nn.BCELoss()
    batch_size = real_cpu.size(0)

    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype)
    output = netD(real_cpu)
    errD_real = criterion(output, label)
    fake = netG(noise)
    label = torch.full((batch_size,), fake_label, dtype=real_cpu.dtype)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD = errD_real + errD_fake

    # (2) Update G network: maximize log(D(G(z)))
    label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    return errD + errG


def example_batch():
    torch.manual_seed(0)
    real_cpu = torch.rand(4, nc, 32, 32) * 2 - 1
    noise = torch.randn(4, nz, 1, 1)
    return real_cpu, noise


def example_inputs():
    _, noise = example_batch()
    return (noise,)


def forward(model, noise):
    """D(G(z)), the quantity both losses score."""
    return model["netD"](model["netG"](noise))
